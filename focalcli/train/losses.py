"""Masked depth losses. Every loss is computed per sample over its valid pixels, then averaged over the batch.

Per-sample means keep the loss of a batch independent of how it is split across DDP ranks (K ranks averaging
their local means give the global mean exactly when local batches are equal).

Depth losses (``LOSSES``; each takes the model's ``forward_train`` output and the ground truth):

- ``diopter-l1`` (default): L1 between predicted and true *positions on the stack's focus axis* (diopters, or frame
  indices without focus distances), divided by the stack's span (``|p_first - p_last|``), plus ``grad_weight`` (0.5)
  times the MiDaS multi-scale gradient-matching term on the same normalised difference. Scale-fair: an error of a
  tenth of the focus range costs the same in a macro stack (span 40 D) as in a room (span 1.5 D), whereas MSE in
  metres weighs a pixel at 8 m about 65,000 times one at 0.5 m. The target is clamped to what the head can reach
  (one ``residual_bound`` beyond the end planes), and pixels more than a frame spacing outside the focus range
  count ``outside_weight`` (0.25; DFV and AiFDepthNet drop them): their depth is a guess, not a measurement.
- ``mse-laplacian`` (the FocDepthFormer paper's, eq. 7): ``MSE + alpha * |log(var(Lap D_pred) / var(Lap D_gt))|``,
  alpha = 0.2, metres, on valid pixels (the Laplacian [[0,1,0],[1,-4,1],[0,1,0]] is taken where all four neighbours
  are valid). The paper writes the log ratio without the absolute value; alone it is unbounded below (a prediction
  with a noisier Laplacian than the ground truth lowers it without limit), so we use its absolute value: zero when
  the prediction is exactly as smooth as the truth, positive when it is blurrier or noisier.
- ``silog-grad``: scale-invariant log loss (Eigen et al. 2014) ``mean(d^2) - lam * mean(d)^2`` with
  ``d = ln p - ln g`` and lam = 0.5, plus ``grad_weight`` (0.5) times the MiDaS gradient-matching term on ``d``.

Frame supervision (``frame_cross_entropy``, added with weight ``TrainConfig.frame_ce`` for models with a soft
choice among frames): cross-entropy between the softmax over frames and a two-hot target, the ground truth's
position split linearly between its two neighbouring focus planes (``models.heads.two_hot``). It teaches the head
*which* frames are in focus rather than only their weighted mean, and keeps the weights from collapsing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from focalcli.checks import check_shape
from focalcli.errors import ConfigError, ShapeError
from focalcli.io.depth import valid_depth

__all__ = ["LOSSES", "diopter_l1_loss", "frame_cross_entropy", "get_loss", "laplacian", "mse_laplacian_loss",
           "silog_gradient_loss", "valid_mask"]

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def valid_mask(gt: torch.Tensor) -> torch.Tensor:
    """Pixels with usable ground truth: finite and > 0 (``io.depth.valid_depth``)."""
    return valid_depth(gt)


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
    """Per-sample mean of ``x`` over ``m`` (bool or weights); 0 for a sample without valid pixels.
    Shape: (B, ...) -> (B,)."""
    m = m.to(x.dtype)
    dims = tuple(range(1, x.dim()))
    return (x * m).sum(dims) / m.sum(dims).clamp(min=1e-6)


def _zeroed(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.where(m, x, torch.zeros((), dtype=x.dtype, device=x.device))  # no NaN leaks through 0 * NaN


def _gradient_matching(d: torch.Tensor, m: torch.Tensor, scales: int = 4) -> torch.Tensor:
    """MiDaS multi-scale gradient matching: mean |horizontal and vertical differences of d| over pairs of valid
    neighbours, summed over ``scales`` subsamplings by 2. Shape ``(B, 1, H, W) -> (B,)``."""
    grad = d.new_zeros(d.shape[0])
    for s in range(scales):
        ds, ms = d[..., :: 2**s, :: 2**s], m[..., :: 2**s, :: 2**s]  # (B, 1, H / 2^s, W / 2^s)
        gx, mx = (ds[..., 1:] - ds[..., :-1]).abs(), ms[..., 1:] & ms[..., :-1]  # (B, 1, h, w - 1)
        gy, my = (ds[..., 1:, :] - ds[..., :-1, :]).abs(), ms[..., 1:, :] & ms[..., :-1, :]  # (B, 1, h - 1, w)
        total = (gx * mx).flatten(1).sum(1) + (gy * my).flatten(1).sum(1)  # (B,)
        count = mx.flatten(1).sum(1) + my.flatten(1).sum(1)  # (B,)
        grad = grad + total / count.clamp(min=1)
    return grad


def mse_laplacian_loss(pred: torch.Tensor, gt: torch.Tensor, alpha: float = 0.2) -> torch.Tensor:
    """The paper's eq. 7 with the absolute log ratio (module docstring).

    Shape:
        pred, gt: ``(B, 1, H, W)`` metres, gt 0 = invalid. Returns a scalar.
    """
    m = _check(pred, gt)
    gt = _zeroed(gt, m)
    mse = _masked_mean((pred - gt) ** 2, m)  # (B,)
    inner = F.max_pool2d((~m).float(), 3, stride=1, padding=1) == 0  # the pixel and its neighbours are valid
    inner &= m

    def variance(x: torch.Tensor) -> torch.Tensor:
        mean = _masked_mean(x, inner)
        return _masked_mean((x - mean[:, None, None, None]) ** 2, inner)  # (B,) population variance

    ratio = torch.log((variance(laplacian(pred)) + 1e-12) / (variance(laplacian(gt)) + 1e-12))  # (B,)
    return (mse + alpha * ratio.abs()).mean()


def silog_gradient_loss(pred: torch.Tensor, gt: torch.Tensor, lam: float = 0.5, grad_weight: float = 0.5,
                        scales: int = 4) -> torch.Tensor:
    """Scale-invariant log loss plus multi-scale gradient matching, on valid pixels (module docstring).

    Shape:
        pred, gt: ``(B, 1, H, W)`` metres, gt 0 = invalid. Returns a scalar.
    """
    m = _check(pred, gt)
    d = _zeroed(pred.clamp(min=1e-6).log() - gt.clamp(min=1e-6).log(), m)
    mean_d = _masked_mean(d, m)  # (B,)
    silog = _masked_mean(d**2, m) - lam * mean_d**2  # (B,)
    return (silog + grad_weight * _gradient_matching(d, m, scales)).mean()


def _positions_of(depth: torch.Tensor, metric: bool) -> torch.Tensor:
    """Depth -> position on the focus axis: diopters (metric) or 0-based frame index."""
    return 1.0 / depth.clamp(min=1e-6) if metric else depth - 1.0


def diopter_l1_loss(pred: torch.Tensor, gt: torch.Tensor, positions: torch.Tensor, metric: bool, *,
                    grad_weight: float = 0.5, outside_weight: float = 0.25, reach: float = 1.0,
                    scales: int = 4) -> torch.Tensor:
    """Scale-fair L1 on positions normalised by the stack's span, plus gradient matching (module docstring).

    Args:
        pred, gt: ``(B, 1, H, W)`` depth (metres when ``metric``, else 1-based frame index); gt 0 = invalid.
        positions: ``(B, N)`` the frames' positions (diopters or indices).
        metric: whether depth is in metres.
        grad_weight: weight of the gradient-matching term.
        outside_weight: weight of pixels more than one frame spacing outside the focus range.
        reach: how far beyond the end planes (in mean frame spacings) the target is clamped.
    """
    from focalcli.models.heads import mean_spacing

    m = _check(pred, gt)
    p = positions.float()
    lo, hi = p.amin(dim=1), p.amax(dim=1)  # (B,)
    span = (hi - lo).clamp_min(1e-6)[:, None, None, None]  # (B, 1, 1, 1)
    step = mean_spacing(p)[:, None, None, None]
    lo, hi = lo[:, None, None, None], hi[:, None, None, None]
    q_gt = _positions_of(_zeroed(gt, m) + (~m).float(), metric)  # invalid pixels: any finite value
    q_pred = _positions_of(pred, metric)
    target = torch.minimum(torch.maximum(q_gt, lo - reach * step), hi + reach * step)
    outside = (q_gt < lo - step) | (q_gt > hi + step)
    weight = torch.where(outside, outside_weight, 1.0) * m  # (B, 1, H, W)
    d = (q_pred - target) / span  # (B, 1, H, W) fractions of the focus range
    loss = _masked_mean(d.abs(), weight)
    if grad_weight:
        loss = loss + grad_weight * _gradient_matching(_zeroed(d, m), m, scales)
    return loss.mean()


def frame_cross_entropy(logits: torch.Tensor, gt: torch.Tensor, positions: torch.Tensor, metric: bool, *,
                        logit_bound: float = 0.0, outside_weight: float = 0.25) -> torch.Tensor:
    """Cross-entropy of the softmax over frames against two-hot targets (module docstring).

    Shape:
        logits ``(B, N, H, W)``, gt ``(B, 1, H, W)`` (0 = invalid), positions ``(B, N)``. Returns a scalar.
    """
    from focalcli.models.heads import two_hot

    m = valid_mask(gt)
    targets, outside = two_hot(_zeroed(gt, m) + (~m).float(), positions, metric)  # (B, N, H, W), (B, 1, H, W)
    z = logits.float()
    if logit_bound > 0:
        z = logit_bound * torch.tanh(z / logit_bound)
    ce = -(targets * z.log_softmax(dim=1)).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    weight = torch.where(outside > 1, outside_weight, 1.0) * m
    return _masked_mean(ce, weight).mean()


def _depth_only(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def loss(out: dict, gt: torch.Tensor, **kw) -> torch.Tensor:
        return fn(out["depth"].float(), gt, **kw)

    loss.__doc__ = fn.__doc__
    return loss


def _diopter_l1(out: dict, gt: torch.Tensor, **kw) -> torch.Tensor:
    if out.get("positions") is None:
        raise ConfigError("diopter-l1 needs a model with a soft choice among frames (a focus-distance-aware model)")
    return diopter_l1_loss(out["depth"].float(), gt, out["positions"], out["metric"], **kw)


# name -> loss(forward_train output, gt depth, **options) -> scalar
LOSSES: dict[str, Callable[..., torch.Tensor]] = {"diopter-l1": _diopter_l1,
                                                   "mse-laplacian": _depth_only(mse_laplacian_loss),
                                                   "silog-grad": _depth_only(silog_gradient_loss)}


def get_loss(name: str) -> Callable[..., torch.Tensor]:
    """The loss called ``name`` (a key of ``LOSSES``): ``loss(forward_train output, gt, **options)``.

    Raises:
        ConfigError: unknown name.
    """
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")
    return LOSSES[name]
