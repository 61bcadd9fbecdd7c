"""Metric head of the focus-distance-aware FocDepthFormer: a bounded softmax over the N frames, times their
positions on the focus axis, plus a small residual (``focalcli.models.heads``), as in DFV and AiFDepthNet.

The logit of frame n at a pixel compares a *query* (the decoder's stack-level features: what the scene looks like
there) with a *key* of frame n (its own stem features, which carry local sharpness at stride 4, plus its own encoder
tokens): "which frame is sharp here". The comparison is a cosine similarity times a learned temperature clamped to
[1, ``max_temperature``]: the logits cannot grow without bound, so the softmax cannot collapse to one-hot early in
training (a raw scaled dot product did, at lr 5e-4). A residual from the query features lets depth fall slightly
beyond the end planes. Logits and residual are computed at stride 2 and upsampled bilinearly to the input size.

Positions are diopters when focus distances are given (depth in metres for any schedule and any N) and frame
indices when they are not (depth in frame-index units, like the classic method).

The head always runs in float32, also under bf16/fp16 autocast: a trained head's per-pixel softmax is sharp, and
bf16 logits moved the depth of a briefly trained tiny model by 4.5 % on average (0.5 % with this head in float32,
the rest of the network in bf16). It costs a few percent of the model's time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from focalcli.models.heads import soft_position

__all__ = ["FocusHead"]


class FocusHead(nn.Module):
    """Bounded softmax over frames times positions, plus a residual -> depth.

    Args:
        features: channels of the decoder's stride-2 feature map.
        stem_channels: channels of the per-frame stem output (stride 4).
        width: token width D.
        key_channels: query/key width.
        max_temperature: largest logit magnitude (cosine similarity times the clamped temperature).
        residual_bound: largest residual, in mean frame spacings.

    Shape:
        - ``feats (B, features, H/2, W/2)``, ``stem (B*N, stem_channels, H/4, W/4)``,
          ``tokens (B*N, T, D)`` on the ``(h, w)`` patch grid, ``positions (B, N)`` (diopters or indices).
        - Output: ``(position (B, 1, H, W), logits (B, N, H, W))``.
    """

    def __init__(self, *, features: int, stem_channels: int, width: int, key_channels: int,
                 max_temperature: float = 10.0, residual_bound: float = 1.0):
        super().__init__()
        self.query = nn.Conv2d(features, key_channels, 3, padding=1)
        self.key_stem = nn.Conv2d(stem_channels, key_channels, 3, padding=1)
        self.key_tokens = nn.Linear(width, key_channels)
        self.key_out = nn.Conv2d(key_channels, key_channels, 1)
        self.residual = nn.Conv2d(features, 1, 3, padding=1)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(5.0)))
        self.max_temperature, self.residual_bound = float(max_temperature), float(residual_bound)

    def forward(self, feats: torch.Tensor, stem: torch.Tensor, tokens: torch.Tensor, grid: tuple[int, int],
                positions: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(feats.device.type, enabled=False):
            return self._forward(feats.float(), stem.float(), tokens.float(), grid, positions.float(), size)

    def _forward(self, feats, stem, tokens, grid, positions, size):
        B, N = positions.shape
        h, w = grid
        q = F.normalize(self.query(feats), dim=1)  # (B, C, H/2, W/2) unit vectors
        t = self.key_tokens(tokens).transpose(1, 2).reshape(B * N, -1, h, w)  # (BN, C, h, w)
        t = F.interpolate(t, size=stem.shape[-2:], mode="bilinear", align_corners=False)  # (BN, C, H/4, W/4)
        k = self.key_out(F.gelu(self.key_stem(stem) + t))  # (BN, C, H/4, W/4)
        k = F.interpolate(k, size=q.shape[-2:], mode="bilinear", align_corners=False)  # (BN, C, H/2, W/2)
        k = F.normalize(k.view(B, N, *k.shape[1:]), dim=2)  # (B, N, C, H/2, W/2) unit vectors
        temperature = self.log_temperature.exp().clamp(1.0, self.max_temperature)
        logits = (q[:, None] * k).sum(dim=2) * temperature  # (B, N, H/2, W/2), |logit| <= max_temperature
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)  # (B, N, H, W)
        residual = F.interpolate(self.residual(feats), size=size, mode="bilinear", align_corners=False)
        position, _ = soft_position(logits, positions, residual, logit_bound=0.0, residual_bound=self.residual_bound)
        return position, logits

