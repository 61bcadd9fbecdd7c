"""Depth metrics as the field defines them, on valid ground-truth pixels only.

Every function is pure: tensors in, a flat ``dict[str, float]`` out, float64 inside. The same functions serve
``focal eval`` and validation during training, so their numbers agree.

Definitions, over the valid pixels ``V`` (ground truth > 0, finite, and inside the optional mask), with the
prediction clamped below at ``EPS`` so ratios and logs stay finite:

- ``abs_rel``  = mean |p - g| / g
- ``sq_rel``   = mean (p - g)^2 / g
- ``rmse``     = sqrt(mean (p - g)^2)
- ``log_rmse`` = sqrt(mean (ln p - ln g)^2)
- ``bump``     = mean over V of min(0.05, ||H(p - g)||_F) x 100 (Bumpiness, from the HCI light-field benchmark and
  used by DDFF-12 and DFV). ``H`` is the 2x2 Hessian of the error map taken by finite differences exactly as
  ``numpy.gradient`` does (central differences (f[i+1] - f[i-1]) / 2 inside, one-sided f[1] - f[0] and
  f[-1] - f[-2] at the borders, unit spacing): first derivatives ``dy, dx`` of the error, then the same operator
  on each of them gives ``dyy, dyx`` and ``dxy, dxx``; ``||H||_F = sqrt(dxx^2 + dxy^2 + dyx^2 + dyy^2)``.
  Invalid pixels enter the differences with an error of 0 and are left out of the mean.
- ``delta1..3`` = fraction of V where max(p / g, g / p) < 1.25^k.

The values are in the units of the inputs (metric when both are metres, disparity when both are disparities); no
scale alignment is done here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch

from focalcli.errors import ShapeError
from focalcli.io.depth import valid_depth

__all__ = ["LOWER_IS_BETTER", "METRIC_KEYS", "bumpiness", "depth_metrics", "hessian_norm", "mean_metrics"]

METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "log_rmse", "bump", "delta1", "delta2", "delta3")
LOWER_IS_BETTER = {"abs_rel": True, "sq_rel": True, "rmse": True, "log_rmse": True, "bump": True,
                   "delta1": False, "delta2": False, "delta3": False}
EPS = 1e-6  # predictions are clamped to at least this before ratios and logs
BUMP_CLIP = 0.05  # Hessian norms above this count as 0.05
BUMP_SCALE = 100.0


def _gradient(f: torch.Tensor, dim: int) -> torch.Tensor:
    """``numpy.gradient`` along ``dim`` with unit spacing (edge order 1); needs a size >= 2 along ``dim``."""
    n = f.shape[dim]
    inner = (f.narrow(dim, 2, n - 2) - f.narrow(dim, 0, n - 2)) / 2 if n > 2 else f.narrow(dim, 0, 0)
    first = f.narrow(dim, 1, 1) - f.narrow(dim, 0, 1)
    last = f.narrow(dim, n - 1, 1) - f.narrow(dim, n - 2, 1)
    return torch.cat([first, inner, last], dim=dim)


def hessian_norm(error: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of the finite-difference Hessian of a map (see the module docstring).

    Shape:
        error: ``(..., H, W)`` with H, W >= 2. Returns the same shape.
    """
    dy, dx = _gradient(error, -2), _gradient(error, -1)
    dyy, dyx = _gradient(dy, -2), _gradient(dy, -1)
    dxy, dxx = _gradient(dx, -2), _gradient(dx, -1)
    return torch.sqrt(dxx**2 + dxy**2 + dyx**2 + dyy**2)


def bumpiness(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> float:
    """Bumpiness of one map: mean over ``valid`` of min(0.05, ||Hessian of (pred - gt)||_F) x 100.

    Shape:
        pred, gt, valid: ``(H, W)``; ``valid`` is boolean.
    """
    if pred.shape[-2] < 2 or pred.shape[-1] < 2:
        return float("nan")
    err = torch.where(valid, pred.double() - gt.double(), torch.zeros((), dtype=torch.float64, device=pred.device))
    h = hessian_norm(err).clamp(max=BUMP_CLIP)
    return float(h[valid].mean() * BUMP_SCALE) if bool(valid.any()) else float("nan")


def depth_metrics(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """All metrics of one prediction against its ground truth.

    Args:
        pred: predicted depth (or disparity).
        gt: ground truth in the same units; values <= 0 or non-finite are invalid.
        mask: optional extra boolean mask of pixels to score.

    Returns:
        ``{key: value}`` for every key of ``METRIC_KEYS``; NaN everywhere when no pixel is valid.

    Shape:
        pred, gt, mask: ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)`` (one image).

    Raises:
        ShapeError: pred and gt differ in shape, or hold more than one image.
    """
    if pred.shape != gt.shape:
        raise ShapeError("prediction and ground truth differ in shape", expected=tuple(gt.shape), actual=pred.shape)
    if pred.dim() < 2 or math.prod(pred.shape[:-2]) != 1:
        raise ShapeError("depth_metrics scores one image at a time", expected="(H, W)", actual=pred.shape)
    p = pred.reshape(pred.shape[-2:]).double()  # (H, W)
    g = gt.reshape(gt.shape[-2:]).double()  # (H, W)
    valid = valid_depth(g) & torch.isfinite(p)
    if mask is not None:
        valid &= mask.reshape(g.shape).bool()
    if not bool(valid.any()):
        return {k: float("nan") for k in METRIC_KEYS}
    pv, gv = p[valid].clamp(min=EPS), g[valid]
    diff = pv - gv
    ratio = torch.maximum(pv / gv, gv / pv)
    out = {
        "abs_rel": float((diff.abs() / gv).mean()),
        "sq_rel": float((diff**2 / gv).mean()),
        "rmse": float(torch.sqrt((diff**2).mean())),
        "log_rmse": float(torch.sqrt(((pv.log() - gv.log()) ** 2).mean())),
        "bump": bumpiness(p, g, valid),
    }
    for k in (1, 2, 3):
        out[f"delta{k}"] = float((ratio < 1.25**k).double().mean())
    return out


def mean_metrics(rows: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Average per-image (or per-stack) metric dicts key by key, skipping NaN entries."""
    rows = list(rows)
    out = {}
    for k in METRIC_KEYS:
        vals = [r[k] for r in rows if not math.isnan(r[k])]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    return out
