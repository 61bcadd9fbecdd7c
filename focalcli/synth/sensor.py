"""The sensor: shot + read noise in linear light (``add_sensor_noise``) and quantisation to the output bit depth.

``synth.render`` applies it after the optics and re-exports ``add_sensor_noise``; the sensor is its own concept (no
optics here), tested through ``tests/test_synth_render.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from focalcli.errors import InputError

__all__ = ["add_sensor_noise", "noise_on", "per_sample", "quantize"]


def per_sample(value, B: int, name: str, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A float or a (B,) sequence/tensor as a (B,) tensor on ``device``."""
    t = torch.as_tensor(value, dtype=torch.float64).flatten() if not isinstance(value, torch.Tensor) else value
    t = t.reshape(-1)
    if t.numel() == 1:
        t = t.expand(B)
    if t.numel() != B:
        raise InputError(f"{name} needs one value or one per sample ({B}), got {t.numel()}")
    return t.to(device, dtype)


def add_sensor_noise(
    linear: torch.Tensor,
    shot: float | Sequence[float] | torch.Tensor,
    read: float | Sequence[float] | torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    noise_seed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Shot + read noise in linear light: ``x + sqrt(shot * x + read^2) * n``, ``n ~ N(0, 1)``.

    Args:
        linear: linear-light values, shape (B, ...).
        shot: shot-noise variance per unit of signal, a float or one per sample (B,) (sequence or tensor).
        read: read-noise standard deviation, a float or one per sample (B,) (sequence or tensor).
        generator: source of ``n`` (``torch.randn``; the numbers depend on the device).
        noise_seed: one int64 seed per sample (B,): ``n`` from ``synth.noise.counter_normal``, the same on every
            device and independent of the batch; takes precedence over ``generator``.

    Shape:
        (B, ...) -> same
    """
    B = linear.shape[0]
    shot_t = per_sample(shot, B, "shot noise", linear.device, linear.dtype)  # (B,)
    read_t = per_sample(read, B, "read noise", linear.device, linear.dtype)  # (B,)
    if not noise_on(shot) and not noise_on(read):
        return linear
    view = (B,) + (1,) * (linear.dim() - 1)
    std = torch.sqrt(shot_t.view(view) * linear.clamp_min(0) + read_t.view(view) ** 2)
    if noise_seed is not None:
        from focalcli.synth.noise import counter_normal

        noise = counter_normal(torch.as_tensor(noise_seed).to(linear.device), tuple(linear.shape[1:]), linear.dtype)
    else:
        noise = torch.randn(linear.shape, generator=generator, device=linear.device, dtype=linear.dtype)
    return linear + std * noise


def quantize(x: torch.Tensor, bits: int) -> torch.Tensor:
    if bits == 0:
        return x
    levels = float(2**bits - 1)
    return torch.round(x * levels) / levels


def noise_on(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() > 0 and bool((value > 0).any())
    if isinstance(value, int | float):
        return value > 0
    return any(v > 0 for v in value)
