"""Early multi-scale convolution stem, run on every frame of the stack before the patch embedding.

The paper puts parallel 3x3, 5x5 and 7x7 convolutions on the image, concatenates them and mixes the result with a
3x3 and a 1x1 convolution, so that local focus cues at several blur scales reach the transformer. Run at full
resolution this stem dominated a small model's CPU time, so here the three parallel convolutions have stride 2 and
the 3x3 mixing convolution stride 2 as well: the stem hands a stride-4 feature map to the patch embedding
(``patch_size / 4`` patches of it), which keeps the three kernel sizes (their receptive fields are still 3, 5 and
7 input pixels) at a sixteenth of the full-resolution cost.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["STEM_STRIDE", "MultiScaleStem"]

STEM_STRIDE = 4  # the stem's output is at 1/4 of the input resolution


class MultiScaleStem(nn.Module):
    """Parallel 3x3/5x5/7x7 convolutions (stride 2) -> concat -> 3x3 (stride 2) -> 1x1.

    Args:
        branch_channels: output channels of each of the three parallel convolutions.
        mid_channels: output channels of the 3x3 mixing convolution.
        out_channels: output channels of the final 1x1 convolution.

    Shape:
        - Input: ``(B, 3, H, W)``, H and W multiples of 4.
        - Output: ``(B, out_channels, H / 4, W / 4)``.
    """

    def __init__(self, *, branch_channels: int, mid_channels: int, out_channels: int):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(3, branch_channels, k, stride=2, padding=k // 2) for k in (3, 5, 7)
        )
        self.mix = nn.Conv2d(3 * branch_channels, mid_channels, 3, stride=2, padding=1)
        self.proj = nn.Conv2d(mid_channels, out_channels, 1)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.act(b(x)) for b in self.branches], dim=1)  # (B, 3 * branch, H/2, W/2)
        x = self.act(self.mix(x))  # (B, mid, H/4, W/4)
        return self.proj(x)  # (B, out, H/4, W/4)
