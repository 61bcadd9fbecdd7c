"""Masked depth losses. Every loss is computed per sample over its valid pixels, then averaged over the batch.

Per-sample means keep the loss of a batch independent of how it is split across DDP ranks (K ranks averaging
their local means give the global mean exactly when local batches are equal).

- ``mse-laplacian`` (the FocDepthFormer paper's): mean squared error on valid pixels plus ``alpha`` (0.2) times the
  variance, over the valid pixels, of the Laplacian of the predicted depth (kernel [[0,1,0],[1,-4,1],[0,1,0]],
  replicate padding). The regulariser penalises noisy, high-curvature depth where the data term is flat.
- ``silog-grad``: scale-invariant log loss (Eigen et al. 2014) ``mean(d^2) - lam * mean(d)^2`` with
  ``d = ln p - ln g`` and lam = 0.5, plus ``grad_weight`` (0.5) times the multi-scale gradient-matching term of
  MiDaS (Ranftl et al. 2020) on ``d``: the mean |horizontal and vertical differences of d| over pairs of valid
  neighbours, summed over 4 scales (subsampling by 2). Predictions are clamped to >= 1e-6 before the log.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from focalcli.checks import check_shape
from focalcli.errors import ConfigError, ShapeError

__all__ = ["LOSSES", "get_loss", "laplacian", "mse_laplacian_loss", "silog_gradient_loss", "valid_mask"]

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def valid_mask(gt: torch.Tensor) -> torch.Tensor:
    """Pixels with usable ground truth: finite and > 0."""
    return torch.isfinite(gt) & (gt > 0)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """4-neighbour Laplacian with replicate padding. Shape: ``(B, 1, H, W)`` -> same."""
    k = _LAPLACIAN.to(device=x.device, dtype=x.dtype)[None, None]  # (1, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)


def _check(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    check_shape(pred, "B 1 H W", "prediction")
    if pred.shape != gt.shape:
        raise ShapeError("prediction and ground truth differ in shape", expected=tuple(gt.shape), actual=pred.shape)
    return valid_mask(gt)


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Per-sample mean of ``x`` over ``m``; 0 for a sample without valid pixels. Shape: (B, ...) -> (B,)."""
    m = m.to(x.dtype)
    dims = tuple(range(1, x.dim()))
    return (x * m).sum(dims) / m.sum(dims).clamp(min=1)


def mse_laplacian_loss(pred: torch.Tensor, gt: torch.Tensor, alpha: float = 0.2) -> torch.Tensor:
    """MSE plus ``alpha`` x variance of the Laplacian of the prediction, both on valid pixels (module docstring).

    Shape:
        pred, gt: ``(B, 1, H, W)`` metres, gt 0 = invalid. Returns a scalar.
    """
    m = _check(pred, gt)
    gt = torch.where(m, gt, torch.zeros((), dtype=gt.dtype, device=gt.device))  # no NaN leaks through 0 * NaN
    mse = _masked_mean((pred - gt) ** 2, m)  # (B,)
    lap = laplacian(pred)
    mean = _masked_mean(lap, m)  # (B,)
    var = _masked_mean((lap - mean[:, None, None, None]) ** 2, m)  # (B,) population variance
    return (mse + alpha * var).mean()


def silog_gradient_loss(pred: torch.Tensor, gt: torch.Tensor, lam: float = 0.5, grad_weight: float = 0.5,
                        scales: int = 4) -> torch.Tensor:
    """Scale-invariant log loss plus multi-scale gradient matching, on valid pixels (module docstring).

    Shape:
        pred, gt: ``(B, 1, H, W)`` metres, gt 0 = invalid. Returns a scalar.
    """
    m = _check(pred, gt)
    d = torch.where(m, pred.clamp(min=1e-6).log() - gt.clamp(min=1e-6).log(), torch.zeros((), dtype=pred.dtype,
                                                                                         device=pred.device))
    mean_d = _masked_mean(d, m)  # (B,)
    silog = _masked_mean(d**2, m) - lam * mean_d**2  # (B,)
    grad = torch.zeros_like(silog)
    for s in range(scales):
        ds, ms = d[..., :: 2**s, :: 2**s], m[..., :: 2**s, :: 2**s]  # (B, 1, H / 2^s, W / 2^s)
        gx, mx = (ds[..., 1:] - ds[..., :-1]).abs(), ms[..., 1:] & ms[..., :-1]  # (B, 1, h, w - 1)
        gy, my = (ds[..., 1:, :] - ds[..., :-1, :]).abs(), ms[..., 1:, :] & ms[..., :-1, :]  # (B, 1, h - 1, w)
        total = (gx * mx).flatten(1).sum(1) + (gy * my).flatten(1).sum(1)  # (B,)
        count = mx.flatten(1).sum(1) + my.flatten(1).sum(1)  # (B,)
        grad = grad + total / count.clamp(min=1)
    return (silog + grad_weight * grad).mean()


LOSSES: dict[str, Callable[..., torch.Tensor]] = {"mse-laplacian": mse_laplacian_loss,
                                                   "silog-grad": silog_gradient_loss}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss called ``name`` (a key of ``LOSSES``).

    Raises:
        ConfigError: unknown name.
    """
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")
    return LOSSES[name]
