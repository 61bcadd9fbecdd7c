"""FocusVolume: a small, fast depth-from-focus network (per-frame focus features, a focus volume, softmax depth).

Depth from focus is a local comparison -- which frame is sharpest here -- plus context where there is nothing to
compare (textureless walls). The network is built around that:

1. **Learned focus measures** (per frame, shared weights, streamable): ``scales`` banks of ``bands`` 3x3 filters on
   the frame's luminance at full (evaluated at stride 2), half and quarter resolution; the magnitude of each
   response is averaged down to stride 4 and log-compressed: learned, multi-band cousins of the Laplacian energy
   (noise-robust where the data asks).
2. **A focus volume** ``(C, N, H/4, W/4)``: each frame's log energies *minus their mean over the stack* (relative
   focus: independent of texture contrast and exposure, and so of the absolute blur scale that varies with optics
   and resolution), the stack mean itself (how much texture there is: how much to trust the comparison), the stack's
   mean image (appearance, for context), and each frame's place in the schedule (its position normalised to [0, 1]
   and its local spacing).
3. **Aggregation**: a U-Net over (frames, height, width) of separable (2+1)-D residual blocks -- a 3x3 spatial
   convolution per frame, then a 3-tap convolution across neighbouring frames -- down to stride ``4 * 2^(L-1)``,
   whose coarse levels carry focus evidence into textureless regions. The volume is laid out ``(B*N, C, h, w)``
   throughout, so everything is a 2-D convolution (``frame_taps`` finishes the frame convolution).
4. **Output** (``focalcli.models.heads``): one bounded logit per frame and pixel, a residual, upsampled to the input
   size; softmax over frames times positions (diopters, or indices without focus distances) plus the residual.

Any N >= 1 and any H, W (padded by edge replication to a multiple of the coarsest stride, cropped back). Every
operation has a plain numpy twin in ``focalcli.models.focusvolume_numpy``, which runs the shipped model on a CPU
without importing torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from focalcli.checks import check_shape
from focalcli.errors import InputError
from focalcli.models.config import FocusVolumeConfig
from focalcli.models.focusvolume_numpy import LOG_EPS
from focalcli.models.heads import check_stack_inputs, frame_positions, position_to_depth, soft_position

__all__ = ["FocusVolumeConfig", "FocusVolumeNet", "frame_taps", "schedule_features"]



def schedule_features(positions: torch.Tensor) -> torch.Tensor:
    """Each frame's place in its schedule: position normalised to [0, 1] from the first to the last frame (0.5 for
    one frame) and its local spacing over the mean spacing (1 for even steps). Shape ``(B, N) -> (B, N, 2)``."""
    B, N = positions.shape
    p = positions.float()
    if N == 1:
        return torch.tensor([0.5, 1.0], device=p.device).expand(B, 1, 2)
    span = p[:, -1:] - p[:, :1]  # (B, 1)
    span = torch.where(span.abs() < 1e-9, torch.ones_like(span), span)
    u = (p - p[:, :1]) / span  # (B, N)
    step = p.diff(dim=1).abs()  # (B, N - 1)
    local = torch.cat([step[:, :1], (step[:, 1:] + step[:, :-1]) / 2, step[:, -1:]], dim=1)  # (B, N)
    return torch.stack([u, local / step.mean(dim=1, keepdim=True).clamp_min(1e-12)], dim=-1)  # (B, N, 2)


def frame_taps(z: torch.Tensor, frames: int) -> torch.Tensor:
    """Finish a 3-tap convolution across frames from per-frame tap outputs (zero padding at the stack's ends).

    ``z`` holds, for every frame m, the three taps ``[W_0 x_m, W_1 x_m, W_2 x_m]``; the output for frame n is
    ``W_0 x_{n-1} + W_1 x_n + W_2 x_{n+1}``. Computing the taps with one 1x1 convolution over ``(B*N, C, h, w)``
    avoids moving the frame axis next to the channels (a 3-D convolution is ~2.5x slower on CPU).

    Shape:
        ``(B*N, 3*C, h, w) -> (B*N, C, h, w)``.
    """
    BN, C3, h, w = z.shape
    z = z.view(BN // frames, frames, 3, C3 // 3, h, w)  # (B, N, 3, C, h, w)
    zero = torch.zeros_like(z[:, :1, 0])  # (B, 1, C, h, w)
    prev = torch.cat([zero, z[:, :-1, 0]], dim=1)  # W_0 x_{n-1}
    nxt = torch.cat([z[:, 1:, 2], zero], dim=1)  # W_2 x_{n+1}
    return (prev + z[:, :, 1] + nxt).flatten(0, 1)  # (BN, C, h, w)


class _Block(nn.Module):
    """(2+1)-D residual block on a volume laid out as ``(B*N, C, h, w)``:
    ``x + across_frames(relu(space(relu(x))))`` with a 3x3 spatial and a 3-tap frame convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.space = nn.Conv2d(channels, channels, 3, padding=1)
        self.taps = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        y = self.taps(F.relu(self.space(F.relu(x))))  # (BN, 3C, h, w)
        return x + frame_taps(y, frames) + self.bias[:, None, None]


class FocusVolumeNet(nn.Module):
    """Focal stack -> depth through a focus volume (module docstring).

    Args:
        config: the architecture.

    Shape:
        - frames: ``(B, N, 3, H, W)`` float sRGB in [0, 1], near to far, any N >= 1, any H and W.
        - focus_distances_m: ``(B, N)`` metres, or None.
        - Output: depth ``(B, 1, H, W)``: metres with focus distances, else 1-based frame index.
    """

    def __init__(self, *, config: FocusVolumeConfig):
        super().__init__()
        c = self.config = config
        self.filters = nn.ModuleList(nn.Conv2d(1, c.bands, 3, padding=1) for _ in range(c.scales))
        w = c.widths
        self.inp = nn.Conv2d(c.volume_inputs, w[0], 1)
        self.widen = nn.ModuleList(nn.Conv2d(w[i - 1], w[i], 1) for i in range(1, len(w)))
        self.down = nn.ModuleList(_Block(wi) for wi in w)
        self.lateral = nn.ModuleList(nn.Conv2d(w[i + 1], w[i], 1) for i in range(len(w) - 1))
        self.up = nn.ModuleList(_Block(w[i]) for i in range(len(w) - 1))
        self.logit = nn.Conv2d(w[0], 1, 3, padding=1)
        self.residual = nn.Conv2d(w[0], 1, 3, padding=1)
        self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114])[None, :, None, None], persistent=False)

    def parts(self) -> dict[str, list[nn.Module]]:
        """Focus measures, the volume U-Net, and the output convolutions."""
        return {"measures": [self.filters], "volume": [self.inp, self.widen, self.down, self.lateral, self.up],
                "head": [self.logit, self.residual]}

    def is_metric(self, focus_distances_m: torch.Tensor | None) -> bool:
        """Whether ``forward`` with these focus distances gives metres (else frame-index units)."""
        return focus_distances_m is not None

    def validate_inputs(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None) -> None:
        """Check shapes and values (focus distances finite and positive); raise ``ShapeError``/``InputError``.

        The value checks read the tensors on the host, so they run once, outside the forward pass (see
        ``models.inference.predict_depth``).
        """
        check_stack_inputs(frames, focus_distances_m)

    def energies(self, gray: torch.Tensor) -> torch.Tensor:
        """Learned focus measures of single gray frames: ``(F, 1, H, W)`` -> log energies ``(F, bands * scales,
        H/4, W/4)`` (H, W multiples of 4).

        Scale s filters the frame averaged by 2^s; the finest scale is evaluated every other pixel (a stride-2
        convolution still sees 1-px detail, and the magnitude is averaged over 4 x 4 pixels anyway), which makes
        the full-resolution part four times cheaper.
        """
        out = []
        for s, conv in enumerate(self.filters):
            if s == 0:
                e = F.conv2d(gray, conv.weight, conv.bias, stride=2, padding=1).abs()  # (F, bands, H/2, W/2)
            else:
                e = conv(F.avg_pool2d(gray, 2**s)).abs()  # (F, bands, H / 2^s, W / 2^s)
            out.append(F.avg_pool2d(e, 2) if s < 2 else e)  # (F, bands, H/4, W/4)
        return torch.log(torch.cat(out, dim=1) + LOG_EPS)

    def forward_train(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                      validate: bool = False) -> dict:
        """Depth and what the losses need: ``{"depth", "logits" (B, N, H, W), "positions" (B, N), "metric"}``.
        Shapes are always checked; ``validate`` adds the value checks of ``validate_inputs`` (a host sync)."""
        if validate:
            self.validate_inputs(frames, focus_distances_m)
        sizes = check_shape(frames, "B N 3 H W", "frames")
        B, N, H, W = sizes["B"], sizes["N"], sizes["H"], sizes["W"]
        if focus_distances_m is not None and tuple(focus_distances_m.shape) != (B, N):
            raise InputError(f"focus_distances_m has shape {tuple(focus_distances_m.shape)}, frames need ({B}, {N})")
        s = self.config.stride
        Hp, Wp = -(-H // s) * s, -(-W // s) * s
        x = frames.reshape(B * N, 3, H, W)  # (BN, 3, H, W)
        if (Hp, Wp) != (H, W):
            x = F.pad(x, (0, Wp - W, 0, Hp - H), mode="replicate")  # (BN, 3, Hp, Wp)
        h, w = Hp // 4, Wp // 4
        e = self.energies((x * self.luma).sum(dim=1, keepdim=True)).view(B, N, -1, h, w)  # (B, N, E, h, w)
        mean_e = e.mean(dim=1, keepdim=True)  # (B, 1, E, h, w)
        image = F.avg_pool2d(x, 4).view(B, N, 3, h, w).mean(dim=1, keepdim=True)  # (B, 1, 3, h, w)
        positions, metric = frame_positions(focus_distances_m, B, N, frames.device)  # (B, N)
        sched = schedule_features(positions)[..., None, None].expand(B, N, 2, h, w)  # (B, N, 2, h, w)
        vol = torch.cat([e - mean_e, mean_e.expand(B, N, -1, h, w), image.expand(B, N, 3, h, w), sched], dim=2)
        vol = self.inp(vol.flatten(0, 1))  # (BN, C0, h, w)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                vol = self.widen[i - 1](F.avg_pool2d(vol, 2))  # (BN, C_i, h / 2^i, w / 2^i)
            vol = block(vol, N)
            skips.append(vol)
        for i in reversed(range(len(self.up))):
            up = F.interpolate(self.lateral[i](vol), scale_factor=2, mode="bilinear", align_corners=False)
            vol = self.up[i](skips[i] + up, N)  # (BN, C_i, h_i, w_i)
        act = F.relu(vol)  # (BN, C0, h, w)
        logits = self.logit(act).view(B, N, h, w)  # (B, N, h, w)
        residual = self.residual(act.view(B, N, -1, h, w).mean(dim=1))  # (B, 1, h, w)
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)  # (B, N, Hp, Wp)
        residual = F.interpolate(residual, scale_factor=4, mode="bilinear", align_corners=False)  # (B, 1, Hp, Wp)
        position, _ = soft_position(logits, positions, residual, logit_bound=self.config.logit_bound,
                                    residual_bound=self.config.residual_bound)
        depth = position_to_depth(position, positions, metric)[..., :H, :W]
        return {"depth": depth, "logits": logits[..., :H, :W], "positions": positions, "metric": metric}

    def forward(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                details: bool = False, validate: bool = False):
        """Depth ``(B, 1, H, W)``; with ``details``, ``forward_train``'s dict (through ``__call__``, so DDP and
        hooks see the call)."""
        out = self.forward_train(frames, focus_distances_m, validate=validate)
        return out if details else out["depth"]
