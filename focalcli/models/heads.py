"""Depth as a soft choice among the stack's frames: the output stage shared by the focus-distance-aware models.

Each pixel gets one logit per frame ("how in focus is frame n here"). A softmax over the frames gives weights
``w_n`` and the pixel's position on the stack's focus axis is their weighted mean plus a small residual:

    p = sum_n w_n p_n + r * s,    |r| <= residual_bound,    s = mean spacing of the frames' positions

Positions are diopters (1 / focus distance) when the focus distances are known, so depth ``1 / p`` is metric for
any schedule and any number of frames (as in DFV and AiFDepthNet); without focus distances they are the frames'
indices, and depth comes out in the classic method's frame-index units (1 = nearest frame, N = farthest; fractional
between frames), so the two methods are interchangeable.

Two guards keep the head well-behaved:

- *bounded logits*: ``b * tanh(l / b)`` (``b = logit_bound``). A softmax over unbounded logits saturates to one-hot
  early in training (a run at lr 5e-4 collapsed that way: zero gradients everywhere); with ``b = 10`` the top
  weight of two frames is at most ``1 / (1 + e^-20)`` and gradients always flow.
- *a residual*: a convex combination cannot leave ``[p_far, p_near]``, so depth between two frames is reachable but
  a background behind the last focus plane would be pinned to it. ``r`` (tanh-bounded, in units of the frame
  spacing) lets depth fall slightly beyond the end planes.

Supervision of the weights themselves (two-hot targets around the ground truth's position) lives in
``focalcli.train.losses``; ``two_hot`` here builds the targets because it needs the same position conventions.
"""

from __future__ import annotations

import torch

from focalcli.checks import check_finite, check_range, check_shape
from focalcli.errors import InputError

__all__ = ["check_stack_inputs", "frame_positions", "mean_spacing", "position_to_depth", "soft_position", "two_hot"]


def frame_positions(focus_distances_m: torch.Tensor | None, batch: int, frames: int,
                    device: torch.device | None = None) -> tuple[torch.Tensor, bool]:
    """Each frame's position on the focus axis and whether it is metric.

    Returns:
        ``(positions (B, N) float32, metric)``: diopters ``1 / focus distance`` when focus distances are given
        (``metric`` True), else frame indices ``0 .. N - 1``.
    """
    if focus_distances_m is None:
        idx = torch.arange(frames, dtype=torch.float32, device=device)
        return idx.expand(batch, frames), False
    return 1.0 / focus_distances_m.float(), True


def mean_spacing(positions: torch.Tensor) -> torch.Tensor:
    """Mean absolute step between adjacent frames' positions; 1 for a single frame. Shape ``(B, N) -> (B,)``."""
    if positions.shape[1] < 2:
        return torch.ones(positions.shape[0], dtype=positions.dtype, device=positions.device)
    return positions.diff(dim=1).abs().mean(dim=1).clamp_min(1e-6)


def soft_position(logits: torch.Tensor, positions: torch.Tensor, residual: torch.Tensor | None = None, *,
                  logit_bound: float = 10.0, residual_bound: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounded softmax over frames times positions, plus a bounded residual (module docstring).

    Args:
        logits: per-frame scores ``(B, N, H, W)``.
        positions: ``(B, N)`` diopters or frame indices.
        residual: raw residual ``(B, 1, H, W)`` (squashed by tanh here), or None.
        logit_bound: ``b`` of ``b * tanh(l / b)``; <= 0 leaves the logits unbounded.
        residual_bound: largest residual, in mean frame spacings.

    Returns:
        ``(position (B, 1, H, W), weights (B, N, H, W))``, both float32 (the softmax runs in float32 even under
        autocast: a sharp softmax in bf16 moves depth by several percent).
    """
    with torch.autocast(logits.device.type, enabled=False):
        logits = logits.float()
        if logit_bound > 0:
            logits = logit_bound * torch.tanh(logits / logit_bound)
        weights = logits.softmax(dim=1)  # (B, N, H, W)
        p = positions.float()
        position = (weights * p[:, :, None, None]).sum(dim=1, keepdim=True)  # (B, 1, H, W)
        if residual is not None:
            step = mean_spacing(p)[:, None, None, None]  # (B, 1, 1, 1)
            position = position + residual_bound * torch.tanh(residual.float()) * step
    return position, weights


def position_to_depth(position: torch.Tensor, positions: torch.Tensor, metric: bool) -> torch.Tensor:
    """Depth from a position on the focus axis: metres ``1 / diopters`` (kept beyond a tenth of the farthest
    plane's diopters, so a residual past an infinity focus stays finite), or 1-based frame index.

    Shape:
        ``position (B, 1, H, W)``, ``positions (B, N)`` -> ``(B, 1, H, W)``.
    """
    if not metric:
        return position + 1.0
    floor = (positions.float().amin(dim=1) * 0.1).clamp_min(1e-3)[:, None, None, None]  # (B, 1, 1, 1) diopters
    return 1.0 / torch.maximum(position, floor)


def two_hot(depth: torch.Tensor, positions: torch.Tensor, metric: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-hot frame targets: the ground truth's position split between its two neighbouring frames (linear
    interpolation weights), clamped to the end frames outside the focus range.

    Args:
        depth: ground truth ``(B, 1, H, W)`` (metres when ``metric``, else 1-based frame index); <= 0 = invalid.
        positions: ``(B, N)``, monotonic along N.
        metric: whether positions are diopters.

    Returns:
        ``(targets (B, N, H, W) summing to 1 per pixel, outside (B, 1, H, W))``: ``outside`` is how far (in mean frame
        spacings) the ground truth lies beyond the nearer end of the focus range (0 inside it).
    """
    B, N = positions.shape
    p = positions.float()
    q = torch.where(depth > 0, 1.0 / depth.clamp_min(1e-6), torch.zeros_like(depth)) if metric else depth - 1.0
    if N == 1:
        return torch.ones(B, 1, *depth.shape[-2:], device=depth.device), torch.zeros_like(depth)
    # fractional frame index of each pixel: positions are monotonic, so interpolate index against position
    ascending = bool((p[:, -1] > p[:, 0]).all())
    ps = p if ascending else p.flip(1)  # (B, N) ascending
    flat = q.reshape(B, -1).contiguous()  # (B, HW)
    k = torch.searchsorted(ps.contiguous(), flat).clamp(1, N - 1)  # (B, HW): ps[k-1] <= q < ps[k] inside
    lo, hi = ps.gather(1, k - 1), ps.gather(1, k)
    t = ((flat - lo) / (hi - lo).clamp_min(1e-12)).clamp(0.0, 1.0)  # (B, HW)
    index = (k - 1).float() + t  # ascending frame index
    if not ascending:
        index = (N - 1) - index
    index = index.reshape(q.shape)  # (B, 1, H, W)
    below, above = ps[:, :1, None, None], ps[:, -1:, None, None]  # (B, 1, 1, 1)
    step = mean_spacing(p)[:, None, None, None]
    outside = (torch.relu(below - q) + torch.relu(q - above)) / step  # (B, 1, H, W)
    i0 = index.floor().clamp(0, N - 1)
    w1 = index - i0  # weight of frame i0 + 1
    frames = torch.arange(N, device=depth.device, dtype=index.dtype)[None, :, None, None]  # (1, N, 1, 1)
    targets = (frames == i0) * (1 - w1) + (frames == i0 + 1) * w1  # (B, N, H, W)
    return targets, outside


def check_stack_inputs(frames: torch.Tensor, focus_distances_m: torch.Tensor | None) -> None:
    """Shapes of a stack and its focus distances, and the distances' values (finite, positive); values on the
    ``meta`` device are not checked. Reads the tensors on the host: run it once, outside the forward pass.

    Raises:
        ShapeError: bad shapes. InputError: distances that do not match the frames or are not finite and positive.
    """
    sizes = check_shape(frames, "B N 3 H W", "frames")
    if focus_distances_m is None:
        return
    fd = check_shape(focus_distances_m, "B N", "focus_distances_m")
    if (fd["B"], fd["N"]) != (sizes["B"], sizes["N"]):
        raise InputError(f"focus_distances_m has shape {tuple(focus_distances_m.shape)}, frames need "
                         f"({sizes['B']}, {sizes['N']})")
    if focus_distances_m.device.type != "meta":
        check_finite(focus_distances_m, "focus_distances_m")
        check_range(focus_distances_m, 1e-6, None, "focus_distances_m")
