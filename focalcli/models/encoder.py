"""ViT encoder over the stem's feature map of each frame: patch embedding, learned position embedding, a global
image token, pre-norm transformer blocks with SDPA attention, and the hidden states of chosen blocks for the
decoder's skips. Also the focus-distance embedding that the focus-aware variant adds to a frame's tokens where
they enter the stack fusion (the encoder itself sees each frame as an image, without its focus distance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from focalcli.models.stem import STEM_STRIDE

__all__ = ["Attention", "Block", "FocusDistanceEmbedding", "ViTEncoder"]


class Attention(nn.Module):
    """Multi-head self-attention through ``scaled_dot_product_attention``.

    Shape:
        ``(B, T, D) -> (B, T, D)``.
    """

    def __init__(self, *, width: int, heads: int):
        super().__init__()
        assert width % heads == 0, f"width {width} is not a multiple of heads {heads}"
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.heads, D // self.heads)  # (B, T, 3, h, D/h)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, T, D/h)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, D/h)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``.

    Shape:
        ``(B, T, D) -> (B, T, D)``.
    """

    def __init__(self, *, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = nn.LayerNorm(width)
        self.attn = Attention(width=width, heads=heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FocusDistanceEmbedding(nn.Module):
    """Embeds a frame's focus distance, in diopters (1 / metres), as a token-sized vector.

    Diopters go through sinusoids at geometrically spaced frequencies (periods from 0.05 to 50 diopters: 2 cm to
    infinity are all told apart) and a two-layer MLP.

    Shape:
        ``(...,) diopters -> (..., D)``.
    """

    def __init__(self, *, width: int, frequencies: int = 16):
        super().__init__()
        periods = torch.logspace(math.log10(0.05), math.log10(50.0), frequencies)
        self.register_buffer("omega", 2 * math.pi / periods, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * frequencies, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, diopters: torch.Tensor) -> torch.Tensor:
        phase = diopters[..., None] * self.omega.to(diopters.dtype)  # (..., F)
        return self.mlp(torch.cat([phase.sin(), phase.cos()], dim=-1))  # (..., D)


class ViTEncoder(nn.Module):
    """Patch embedding of the stem features + global image token + position embedding + transformer blocks.

    The position embedding is learned for the native grid (``image_size / patch_size`` squared) and bicubically
    interpolated for other grids. The global image token is an MLP of the whole stem feature map (average-pooled
    to a fixed ``global_grid`` x ``global_grid`` so any input size works), added to every patch token.

    Args:
        in_channels: channels of the stem output.
        patch_size: patch size in input pixels (a multiple of the stem stride, 4).
        image_size: native input size (square), which sets the learned position grid.
        width, depth, heads, mlp_ratio: transformer size.
        hooks: 1-based indices of the blocks whose outputs are returned, increasing, the last one ``depth``.
        global_grid: pooled grid size fed to the global-token MLP.

    Shape:
        - Input: ``(B, in_channels, H / 4, W / 4)`` with H, W multiples of ``patch_size``.
        - Output: a list of ``len(hooks)`` tensors ``(B, T, D)``, ``T = (H / patch) * (W / patch)``.
    """

    def __init__(self, *, in_channels: int, patch_size: int, image_size: int, width: int, depth: int, heads: int,
                 mlp_ratio: float, hooks: Sequence[int], global_grid: int):
        super().__init__()
        assert patch_size % STEM_STRIDE == 0, f"patch size {patch_size} is not a multiple of {STEM_STRIDE}"
        assert list(hooks) == sorted(set(hooks)) and hooks[0] >= 1 and hooks[-1] == depth, f"bad hooks {hooks}"
        k = patch_size // STEM_STRIDE
        self.grid = image_size // patch_size
        self.hooks = tuple(hooks)
        self.patch = nn.Conv2d(in_channels, width, k, stride=k)
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid, width) * 0.02)
        self.global_grid = global_grid
        self.global_mlp = nn.Sequential(nn.Linear(in_channels * global_grid**2, width), nn.GELU(),
                                        nn.Linear(width, width))
        self.blocks = nn.ModuleList(Block(width=width, heads=heads, mlp_ratio=mlp_ratio) for _ in range(depth))

    def position(self, h: int, w: int) -> torch.Tensor:
        """The position embedding for an ``h x w`` grid, shape ``(1, h * w, D)``."""
        if (h, w) == (self.grid, self.grid):
            return self.pos
        D = self.pos.shape[-1]
        pos = self.pos.reshape(1, self.grid, self.grid, D).permute(0, 3, 1, 2)  # (1, D, g, g)
        pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)  # (1, D, h, w)
        return pos.flatten(2).transpose(1, 2)  # (1, h*w, D)

    def forward(self, feats: torch.Tensor) -> list[torch.Tensor]:
        B, C, h4, w4 = feats.shape
        x = self.patch(feats)  # (B, D, h, w)
        h, w = x.shape[-2:]
        # The residual stream stays in the parameters' precision (float32) under autocast: only the matmuls run in
        # bf16/fp16. The focus cue is a small change of the tokens through the stack, below bf16's resolution of
        # the full token.
        x = x.flatten(2).transpose(1, 2).to(self.pos.dtype)  # (B, T, D)
        pooled = F.adaptive_avg_pool2d(feats, self.global_grid).flatten(1)  # (B, C * g * g)
        glob = self.global_mlp(pooled)  # (B, D)
        x = x + self.position(h, w) + glob[:, None, :]  # (B, T, D)
        out = []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i in self.hooks:
                out.append(x)
        return out
