"""Exported model files: safetensors with the model's own config in the header. Never pickle.

A file's ``__metadata__`` (string -> string, as safetensors requires) holds:

- ``format_version``: ``"1"``;
- ``model``: the preset name (or ``"custom"``);
- ``config``: the full model config (``ModelConfig`` or ``FocusVolumeConfig``; its ``arch`` says which) as JSON;
- ``focal_version``: the focal version that wrote it;
- ``trained_on``: free text (data sets, steps), ``"untrained"`` for a fresh model.

Loading rebuilds the model from the file's config and loads the tensors strictly: any problem is a
``ModelFileError`` with one line saying what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from focalcli.errors import ConfigError, ModelFileError
from focalcli.io.atomic import atomic_path, check_output

__all__ = ["FORMAT_VERSION", "MAX_PARAMETERS", "check_model_size", "export_model", "list_models", "load_model",
           "load_numpy_model", "read_arch", "read_config", "read_metadata", "shipped_weights", "unwrap_model"]

FORMAT_VERSION = "1"
MAX_PARAMETERS = 1_000_000_000  # the largest model focal builds from a config (4 GB of float32 weights)
_KEYS = ("format_version", "model", "config", "focal_version", "trained_on")


def unwrap_model(model):
    """The plain module inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers, so that saved keys
    never carry ``module.`` or ``_orig_mod.``."""
    from torch.nn.parallel import DistributedDataParallel

    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def export_model(model, path: str | os.PathLike, *, trained_on: str = "untrained", overwrite: bool = False) -> Path:
    """Write ``model`` (any focal network) to a ``.safetensors`` file, atomically.

    Raises:
        OutputError: bad extension, missing folder, or the file exists without ``overwrite``.
    """
    from safetensors.torch import save_model

    from focalcli import __version__

    model = unwrap_model(model)
    p = check_output(path, overwrite=overwrite, suffixes=(".safetensors",))
    metadata = {
        "format_version": FORMAT_VERSION,
        "model": model.config.name,
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
        "focal_version": __version__,
        "trained_on": trained_on,
    }
    with atomic_path(p) as tmp:
        save_model(model, str(tmp), metadata=metadata)
    return p


def check_model_size(build: Callable[[], object], where: str = "model config", *,
                     limit: int = MAX_PARAMETERS):
    """Build a model on the meta device (shapes only, nothing allocated) and check its size before the real build.

    Written for any architecture: ``build`` is whatever turns a config into a module (``lambda: build_model(cfg)``).

    Args:
        build: makes the model; it runs under ``torch.device("meta")``.
        where: names the config in messages.
        limit: the most parameters (and buffer elements) allowed.

    Returns:
        The meta-device model (its ``state_dict()`` gives every tensor's shape for free).

    Raises:
        ConfigError: the config does not build a model, or the model is larger than ``limit``.
    """
    import torch

    try:
        with torch.device("meta"):
            model = build()
    except (RuntimeError, ValueError, TypeError, ArithmeticError) as e:
        raise ConfigError(f"{where}: does not describe a model focal can build ({str(e).splitlines()[0]})") from e
    total = sum(t.numel() for t in model.state_dict().values())
    if total > limit:
        raise ConfigError(f"{where}: the model would hold {total / 1e6:,.0f} M parameters; focal builds at most "
                          f"{limit / 1e6:,.0f} M")
    return model


def _read_header(p: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """``(metadata, {tensor name: shape})`` from a safetensors header, without reading the tensors."""
    from safetensors import SafetensorError, safe_open

    if not p.is_file():
        raise ModelFileError(f"{p}: no such model file")
    try:
        with safe_open(str(p), framework="numpy") as f:  # header only; "pt" would import torch
            meta = f.metadata() or {}
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError) as e:
        raise ModelFileError(f"{p}: not a safetensors file ({e})") from e
    return meta, shapes


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The checked ``__metadata__`` of a focal model file (reads the header only).

    Raises:
        ModelFileError: missing, not safetensors, not written by focal, or of an unknown format version.
    """
    p = Path(path)
    meta, _ = _read_header(p)
    missing = [k for k in _KEYS if k not in meta]
    if missing:
        raise ModelFileError(f"{p}: not a focal model file (metadata lacks {', '.join(missing)})")
    if meta["format_version"] != FORMAT_VERSION:
        raise ModelFileError(f"{p}: model file format {meta['format_version']!r}; this focal reads {FORMAT_VERSION!r}")
    return dict(meta)


def read_arch(path: str | os.PathLike) -> str:
    """The ``arch`` of a model file's config (``focdepthformer`` for files written before there were two), from the
    header only.

    Raises:
        ModelFileError: see ``read_metadata``; a config that is not JSON.
    """
    meta = read_metadata(path)
    try:
        raw = json.loads(meta["config"])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: its model config is not JSON ({e})") from e
    return raw.get("arch", "focdepthformer") if isinstance(raw, dict) else "focdepthformer"


def read_config(path: str | os.PathLike):
    """The checked model config of a focal model file, and the shapes of its tensors (header only).

    Raises:
        ModelFileError: see ``read_metadata``; a config focal cannot build; tensors that do not match it.
    """
    from focalcli.models.build import build_model
    from focalcli.models.config import config_from_dict

    p = Path(path)
    meta = read_metadata(p)
    _, shapes = _read_header(p)
    try:
        config = config_from_dict(json.loads(meta["config"]))
        shape_model = check_model_size(lambda: build_model(config), "its model config")
    except (json.JSONDecodeError, ConfigError, TypeError, RecursionError) as e:
        raise ModelFileError(f"{p}: its model config cannot be used ({e})") from e
    expected = {k: tuple(v.shape) for k, v in shape_model.state_dict().items()}  # before anything is allocated
    problems = []
    checks = (("missing", sorted(set(expected) - set(shapes))), ("unexpected", sorted(set(shapes) - set(expected))),
              ("wrong shape", sorted(k for k in set(expected) & set(shapes) if expected[k] != shapes[k])))
    for what, keys in checks:
        if keys:
            problems.append(f"{len(keys)} {what} tensor(s), e.g. {keys[0]}")
    if problems:
        raise ModelFileError(f"{p}: weights do not match model {config.name!r}: {'; '.join(problems)}")
    return config


def load_model(path: str | os.PathLike, *, device: str | None = None):
    """Rebuild a network from a file's own config and load its weights strictly; in eval mode.

    Args:
        path: a file written by ``export_model``.
        device: where to put the weights (default CPU).

    Raises:
        ModelFileError: see ``read_config``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model as st_load_model

    from focalcli.models.build import build_model

    config = read_config(path)
    model = build_model(config)
    try:
        st_load_model(model, str(path), strict=True, device=str(device or "cpu"))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise ModelFileError(f"{path}: its tensors cannot be read ({str(e).splitlines()[0]})") from e
    return model.eval()


def load_numpy_model(path: str | os.PathLike):
    """A FocusVolume model file as ``focalcli.models.focusvolume_numpy.FocusVolumeNumpy`` (no torch needed when
    the file is well-formed: shapes are checked against the numpy twin's own expectations).

    Raises:
        ModelFileError: see ``read_metadata``; not a FocusVolume model; tensors the config does not describe.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    from focalcli.models.config import config_from_dict
    from focalcli.models.focusvolume_numpy import FocusVolumeNumpy

    p = Path(path)
    meta = read_metadata(p)
    try:
        config = config_from_dict(json.loads(meta["config"]))
    except (json.JSONDecodeError, ConfigError, TypeError) as e:
        raise ModelFileError(f"{p}: its model config cannot be used ({e})") from e
    if config.arch != "focusvolume":
        raise ModelFileError(f"{p}: a {config.arch} model has no numpy implementation")
    try:
        return FocusVolumeNumpy(config, load_file(str(p)))
    except (SafetensorError, OSError) as e:
        raise ModelFileError(f"{p}: cannot read its tensors ({e})") from e
    except (KeyError, ValueError, IndexError) as e:
        raise ModelFileError(f"{p}: weights do not match model {config.name!r} ({e})") from e


def shipped_weights(name: str) -> Path | None:
    """The weights file shipped with focal for preset ``name`` (package data ``focalcli/pretrained/NAME.safetensors``),
    or None."""
    from importlib.resources import files

    candidate = files("focalcli").joinpath("pretrained", f"{name}.safetensors")
    return Path(str(candidate)) if candidate.is_file() else None


def list_models() -> list[dict]:
    """One summary per preset: ``name``, ``arch``, ``params`` (int), ``focus_distance_aware`` (bool),
    ``input_size`` (int, native square size; 0 = any), ``weights_shipped`` (bool), ``default`` (bool), ``parts``
    (parameters per part) and ``description``. Counting happens on the meta device: nothing is allocated."""
    from focalcli.models.config import DEFAULT_MODEL, get_config, preset_doc, preset_names
    from focalcli.models.inference import parameters_by_part

    rows = []
    for name in preset_names():
        config = get_config(name)
        parts = parameters_by_part(config)
        rows.append({
            "name": name,
            "arch": config.arch,
            "params": parts.pop("total"),
            "focus_distance_aware": getattr(config, "focus_distance_aware", True),
            "input_size": getattr(config, "image_size", 0),
            "weights_shipped": shipped_weights(name) is not None,
            "default": name == DEFAULT_MODEL,
            "parts": parts,
            "description": preset_doc(name),
        })
    return rows
