"""``--data KIND:PATH[:WEIGHT]`` specs and the sources they name: what ``focal train`` and ``focal eval`` open."""

from __future__ import annotations

import math
from dataclasses import dataclass

from focalcli.data.base import Source
from focalcli.errors import ConfigError

__all__ = ["DATA_KINDS", "DataSpec", "build_source", "parse_data_spec"]

DATA_KINDS = ("ddff", "fod500", "stacks", "synth", "procedural")
_EVAL_SPLIT = {"ddff": "val", "fod500": "test"}


@dataclass(frozen=True)
class DataSpec:
    """One ``--data`` entry."""

    kind: str  # one of DATA_KINDS
    path: str | None  # file or folder; None for procedural
    weight: float = 1.0  # relative sampling weight in the training mixture

    def __str__(self) -> str:
        return ":".join(str(x) for x in (self.kind, self.path, self.weight) if x is not None)


def parse_data_spec(text: str) -> DataSpec:
    """Parse ``KIND:PATH[:WEIGHT]`` (``procedural[:WEIGHT]`` has no path).

    Examples: ``synth:../shared/data/rgbd:0.5``, ``procedural:0.5``, ``ddff:ddff-dataset.h5``, ``stacks:out``.

    Raises:
        ConfigError: unknown kind, missing path, or a weight that is not a positive number.
    """
    kind, _, rest = text.partition(":")
    if kind not in DATA_KINDS:
        raise ConfigError(f"--data {text!r}: unknown kind {kind!r}; use one of {', '.join(DATA_KINDS)}")
    path, weight = rest or None, 1.0
    head, sep, tail = rest.rpartition(":")
    if kind == "procedural":
        path, weight_text = None, rest
    elif sep and _is_number(tail):
        path, weight_text = head, tail
    else:
        weight_text = ""
    if weight_text:
        if not _is_number(weight_text) or not math.isfinite(float(weight_text)) or float(weight_text) <= 0:
            raise ConfigError(f"--data {text!r}: the weight must be a positive number, got {weight_text!r}")
        weight = float(weight_text)
    if kind != "procedural" and not path:
        raise ConfigError(f"--data {text!r}: {kind} needs a path ({kind}:PATH[:WEIGHT])")
    return DataSpec(kind, path, weight)


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def build_source(spec: DataSpec, *, train: bool, synth_options: dict | None = None) -> Source:
    """Open the source a spec names: its training split when ``train``, else its evaluation split.

    ``synth_options`` go to the synthetic sources (``synth``, ``procedural``); real sources ignore them.
    """
    if spec.kind == "ddff":
        from focalcli.data.ddff import DDFFSource

        return DDFFSource(spec.path, split="train" if train else _EVAL_SPLIT["ddff"])
    if spec.kind == "fod500":
        from focalcli.data.fod500 import FoD500Source

        return FoD500Source(spec.path, split="train" if train else _EVAL_SPLIT["fod500"])
    if spec.kind == "stacks":
        from focalcli.data.stacks import StackFolderSource

        return StackFolderSource(spec.path)
    from focalcli.data.synthetic import synthetic_source

    return synthetic_source(spec.kind, spec.path, train=train, **(synth_options or {}))
