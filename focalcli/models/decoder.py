"""DPT-style convolutional decoder: fused tokens of four encoder blocks -> a feature map at half the input size,
and the regression head that turns it into depth at the input size.

Reassemble (DPT): the tokens of each hooked block are laid out on the patch grid, projected by a 1x1 convolution
and resampled to strides 4, 8, 16 and 32 (transposed convolutions up, a strided convolution down), then mapped to
a common width by a 3x3 convolution. Fusion (RefineNet-like): from the deepest level up, residual convolution
units merge each level with the next shallower one, upsampling by 2 each time, down to stride 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DPTDecoder", "DepthHead"]


class _ResidualConvUnit(nn.Module):
    """``x + conv(relu(conv(relu(x))))`` with 3x3 convolutions. Shape: ``(B, C, h, w) -> (B, C, h, w)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _FusionBlock(nn.Module):
    """Merge a deeper path with a skip (when given), refine, upsample to ``size``, 1x1 projection."""

    def __init__(self, channels: int, *, with_skip: bool):
        super().__init__()
        self.skip_unit = _ResidualConvUnit(channels) if with_skip else None
        self.unit = _ResidualConvUnit(channels)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if self.skip_unit is not None:
            x = x + self.skip_unit(skip)
        x = self.unit(x)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)  # (B, C, *size)
        return self.out(x)


class DPTDecoder(nn.Module):
    """Four token maps at stride 16 -> features at stride 2.

    Args:
        width: token width D.
        channels: reassemble widths of the four levels (shallow to deep).
        features: common width of the fusion path.

    Shape:
        - Input: a list of four ``(B, T, D)`` token tensors and the patch grid ``(h, w)``, ``T = h * w``.
        - Output: ``(B, features, 8h, 8w)`` (stride 2 of the padded input).
    """

    def __init__(self, *, width: int, channels: Sequence[int], features: int):
        super().__init__()
        assert len(channels) == 4, f"the decoder takes four levels, got {len(channels)} widths"
        c1, c2, c3, c4 = channels
        self.project = nn.ModuleList(nn.Conv2d(width, c, 1) for c in channels)
        self.resample = nn.ModuleList([
            nn.ConvTranspose2d(c1, c1, 4, stride=4),  # stride 16 -> 4
            nn.ConvTranspose2d(c2, c2, 2, stride=2),  # stride 16 -> 8
            nn.Identity(),  # stride 16
            nn.Conv2d(c4, c4, 3, stride=2, padding=1),  # stride 16 -> 32
        ])
        self.to_features = nn.ModuleList(nn.Conv2d(c, features, 3, padding=1, bias=False) for c in channels)
        self.fuse = nn.ModuleList(_FusionBlock(features, with_skip=i < 3) for i in range(4))

    def forward(self, tokens: list[torch.Tensor], grid: tuple[int, int]) -> torch.Tensor:
        h, w = grid
        maps = []
        for x, project, resample, to_features in zip(tokens, self.project, self.resample, self.to_features,
                                                     strict=True):
            B, T, D = x.shape
            x = x.transpose(1, 2).reshape(B, D, h, w)  # (B, D, h, w)
            maps.append(to_features(resample(project(x))))  # (B, features, h_i, w_i)
        l1, l2, l3, l4 = maps
        x = self.fuse[3](l4, None, l3.shape[-2:])  # stride 16
        x = self.fuse[2](x, l3, l2.shape[-2:])  # stride 8
        x = self.fuse[1](x, l2, l1.shape[-2:])  # stride 4
        return self.fuse[0](x, l1, (2 * l1.shape[-2], 2 * l1.shape[-1]))  # stride 2


class DepthHead(nn.Module):
    """Regression head (the paper's variant): stride-2 features -> positive depth at the input size.

    Shape:
        ``(B, C, H / 2, W / 2) -> (B, 1, H, W)`` for ``size = (H, W)``.
    """

    def __init__(self, *, features: int):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features // 2, 3, padding=1)
        self.conv2 = nn.Conv2d(features // 2, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 1, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = F.interpolate(self.conv1(x), size=size, mode="bilinear", align_corners=False)  # (B, C/2, H, W)
        x = self.conv3(F.relu(self.conv2(x)))  # (B, 1, H, W)
        return F.softplus(x)
