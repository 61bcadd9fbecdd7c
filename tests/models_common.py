"""Helpers shared by the model tests: a micro configuration and a random stack."""

from __future__ import annotations

import torch

from focalcli.models import ModelConfig, build_model, default_focus_distances

# A micro model (fast on CPU) of each head type; the presets share the same code path.
MICRO = dict(name="custom", image_size=32, width=32, depth=4, heads=2, stem_branch=4, stem_mid=8, stem_out=8,
             lstm_hidden=16, lstm_layers=2, decoder_channels=(8, 8, 16, 16), decoder_features=16, key_channels=8)


def micro(aware: bool, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(**{**MICRO, "focus_distance_aware": aware, **overrides}))


def stack(B: int, N: int, H: int, W: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(B, N, 3, H, W, generator=g)
    fd = default_focus_distances(N, near_m=0.2, far_m=2.0).expand(B, N).clone()
    return frames, fd
