"""Run a depth method over an evaluation set and score it the field's way.

Protocols (each stack is scored on its own, then the per-stack values are averaged):

- ``ddff``: DDFF-12. Depths are turned into disparities (``0.14124 / depth``) and scored in disparity on pixels
  where the ground-truth disparity is > 0.
- ``fod500``: FoD500. Depth in metres; the prediction is clipped to [0, 1.5] m and pixels whose ground truth lies
  outside (0, 1.5] m are left out.
- ``metric``: depth in metres on every valid (> 0) ground-truth pixel, no clipping.

No scale alignment is done: every number is metric (or DDFF disparity).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from focalcli.data.base import Source
from focalcli.data.ddff import DDFF_BASELINE_FOCAL
from focalcli.errors import ConfigError
from focalcli.evaluation.metrics import depth_metrics, mean_metrics

__all__ = ["PROTOCOLS", "EvalResult", "classic_predictor", "default_protocol", "evaluate", "model_predictor",
           "score", "takes_camera"]

PROTOCOLS = ("ddff", "fod500", "metric")
FOD500_MAX_M = 1.5

# (frames (N, 3, H, W), focus distances (N,)) -> depth (H, W) metres; a predictor with a ``camera`` keyword
# parameter is also given the item's ``Camera`` (None when the source does not know it), as ``focal predict``
# reads it from stack.json
Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Progress = Callable[[int, int], None]


@dataclass
class EvalResult:
    """Per-stack rows and their means."""

    protocol: str
    method: str
    rows: list[dict] = field(default_factory=list)  # {"name": ..., metric: value, ...}
    mean: dict[str, float] = field(default_factory=dict)

    @property
    def units(self) -> str:
        return "disparity (DDFF-12, 0.14124 / depth)" if self.protocol == "ddff" else "metres"

    def to_json(self) -> dict:
        """A JSON-ready dict (NaN, for a stack without valid pixels, becomes null)."""

        def clean(d: dict) -> dict:
            return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}

        return {"protocol": self.protocol, "units": self.units, "method": self.method, "count": len(self.rows),
                "scale_aligned": False, "mean": clean(self.mean), "rows": [clean(r) for r in self.rows]}


def default_protocol(kind: str) -> str:
    """The protocol published numbers use for a data kind (``ddff``, ``fod500``, else ``metric``)."""
    return kind if kind in ("ddff", "fod500") else "metric"


def score(pred: torch.Tensor, gt: torch.Tensor, protocol: str) -> dict[str, float]:
    """Metrics of one depth map under a protocol (see the module docstring).

    Shape:
        pred, gt: ``(H, W)`` depth in metres; gt 0 = invalid.
    """
    pred, gt = pred.double(), gt.double()
    if protocol == "ddff":
        valid = gt > 0
        gt_disp = torch.where(valid, DDFF_BASELINE_FOCAL / gt.clamp(min=1e-12), torch.zeros((), dtype=gt.dtype))
        pred_disp = DDFF_BASELINE_FOCAL / pred.clamp(min=1e-6)
        return depth_metrics(pred_disp, gt_disp)
    if protocol == "fod500":
        return depth_metrics(pred.clamp(0, FOD500_MAX_M), gt, mask=gt <= FOD500_MAX_M)
    if protocol == "metric":
        return depth_metrics(pred, gt)
    raise ConfigError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


def evaluate(source: Source, predictor: Predictor, *, protocol: str, method: str = "",
             limit: int | None = None, progress: Progress | None = None) -> EvalResult:
    """Predict every item of ``source`` and score it.

    Args:
        source: evaluation items (``focalcli.data.build_source(spec, train=False)``).
        predictor: maps ``(frames (N, 3, H, W), focus distances (N,))`` to depth ``(H, W)`` in metres; one with a
            ``camera`` keyword parameter also gets the item's ``Camera`` (or None).
        protocol: one of ``PROTOCOLS``.
        method: a label stored in the result.
        limit: score only the first ``limit`` items.
        progress: called with ``(done, total)``.

    Raises:
        ConfigError: unknown protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    total = len(source) if limit is None else min(limit, len(source))
    result = EvalResult(protocol=protocol, method=method)
    optics = takes_camera(predictor)
    for i in range(total):
        item = source.item(i)
        if optics:
            pred = predictor(item["frames"], item["focus_distances_m"], camera=item.get("camera"))
        else:
            pred = predictor(item["frames"], item["focus_distances_m"])
        result.rows.append({"name": item["name"], **score(pred.cpu(), item["depth"][0], protocol)})
        if progress is not None:
            progress(i + 1, total)
    result.mean = mean_metrics(result.rows)
    return result


def takes_camera(predictor: Predictor) -> bool:
    """Whether ``predictor`` has a ``camera`` keyword parameter (it is then given each item's ``Camera``)."""
    import inspect

    try:
        return "camera" in inspect.signature(predictor).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): called the plain way
        return False


def classic_predictor(*, align: str = "auto", **options) -> Predictor:
    """The classical focus-measure peak as a predictor, run as ``focal predict --method classic`` runs it
    (``focalcli.predict.predict``): aligned first when ``align`` says so (``auto``: when the quick check finds the
    frames moving; an aligned stack is left bit for bit as it is), and with the stack's camera the window follows
    the blur step. ``options`` are ``depth_from_focus``'s (``measure``, ``window``, ``smooth``)."""
    from focalcli.io.stack import Camera, FocalStack
    from focalcli.predict.run import predict

    def run(frames: torch.Tensor, focus: torch.Tensor, camera: Camera | None = None) -> torch.Tensor:
        stack = FocalStack(frames=frames, focus_distances_m=focus, camera=camera or Camera())
        return torch.from_numpy(predict(stack, method="classic", align=align, **options).depth)

    return run


def model_predictor(model, device="cpu", *, precision: str = "fp32", max_size: int = 512,
                    align: str = "auto") -> Predictor:
    """A trained model as a predictor, run exactly as ``focal predict --method model`` runs it
    (``focalcli.predict.predict`` with a ``models.runner.ModelRunner``: alignment as ``align`` says, working
    resolution ``max_size``, inverse-depth resizing, precision, device).

    Args:
        model: a ``ModelRunner``, or a network (torch module or numpy twin) to wrap in one.
        device, precision, max_size: for a network given directly.
        align: ``auto``, ``on`` or ``off`` (``off`` for frames on a GPU, as training's validation has them).
    """
    from focalcli.io.stack import FocalStack
    from focalcli.models.runner import ModelRunner
    from focalcli.predict.run import predict

    runner = model if isinstance(model, ModelRunner) else ModelRunner(model, device=device, precision=precision,
                                                                      max_size=max_size)

    def run(frames: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
        stack = FocalStack(frames=frames, focus_distances_m=focus)
        return torch.from_numpy(predict(stack, method="model", align=align, runner=runner).depth)

    return run
