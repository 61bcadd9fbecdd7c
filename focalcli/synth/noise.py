"""Counter-based Gaussian noise: the same numbers on every device for a given seed.

``torch.randn`` with a generator gives different numbers on a CPU and a GPU (and a CUDA generator cannot be replayed
on a CPU), so a stack rendered on the training GPU would not match the same sample rendered by a CPU worker. Here
each value is a pure function of ``(seed, index)``: the index of the value within its sample, mixed with the
sample's 64-bit seed by two rounds of a 32-bit integer hash (xor-shift / multiply / xor-shift / multiply /
xor-shift, with the constants of C. Wellons' hash-prospector ``[16 21f0aaad 15 735a2d97 15]``). The hash runs on
int64 tensors holding 32-bit values, and its multipliers are below 2^31, so no product overflows: the bits are
identical on every device. Pairs of uniforms become pairs of normals by the Box-Muller transform, whose float
operations (log, sqrt, cos, sin) agree between devices to a few ulp.

A sample's noise depends only on its seed and its own shape, not on its place in the batch or the batch size.
On a CPU the values are made in cache-sized blocks (the hash is a chain of whole-tensor integer operations).
"""

from __future__ import annotations

import math

import torch

__all__ = ["counter_bits", "counter_normal"]

_MASK = 0xFFFFFFFF
_CPU_BLOCK = 1 << 16  # values per block on a CPU


def _mix_(x: torch.Tensor) -> torch.Tensor:
    """The 32-bit hash, in place on int64 values in [0, 2^32) (a bijection of that range)."""
    x.bitwise_xor_(x >> 16).mul_(0x21F0AAAD).bitwise_and_(_MASK)
    x.bitwise_xor_(x >> 15).mul_(0x735A2D97).bitwise_and_(_MASK)
    return x.bitwise_xor_(x >> 15)


def _keys(seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 32-bit keys per 64-bit seed. Shape: (B,) -> 2 x (B, 1)."""
    seed = seed.long().reshape(-1, 1)
    lo, hi = seed & _MASK, (seed >> 32) & _MASK
    k1 = _mix_(lo ^ _mix_(hi ^ 0x9E3779B9))
    return k1, _mix_(k1 ^ 0x85EBCA6B)


def _bits(k1: torch.Tensor, k2: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Hashes of the counters ``start .. stop - 1`` for each key pair. Shape: (B, 1) keys -> (B, stop - start)."""
    i = torch.arange(start, stop, device=k1.device, dtype=torch.int64)[None]  # (1, n)
    return _mix_(_mix_(i ^ k1) ^ k2)


def counter_bits(seed: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` pseudo-random 32-bit values per seed (int64 in [0, 2^32)), identical on every device.

    Shape:
        seed (B,) int64 -> (B, count)
    """
    if count > 2**32:
        raise ValueError(f"at most 2^32 values per seed, asked for {count}")
    return _bits(*_keys(seed), 0, count)


def _box_muller(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Pairs of 32-bit values (B, m, 2) -> pairs of standard normals (B, m, 2) (24 bits of each uniform)."""
    u1 = ((bits[..., 0] >> 8).to(dtype) + 0.5) * 2.0**-24  # (B, m) in (0, 1)
    u2 = (bits[..., 1] >> 8).to(dtype) * 2.0**-24  # (B, m) in [0, 1)
    r = torch.sqrt(-2.0 * torch.log(u1))
    theta = (2 * math.pi) * u2
    return torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=-1)


def counter_normal(seed: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal values of the given per-sample shape, a pure function of each sample's seed.

    Args:
        seed: one int64 seed per sample, shape (B,), on the device where the noise is wanted.
        shape: the shape of one sample's noise (at most 2^32 values).
        dtype: float dtype of the result (float64 is computed in float64, anything else in float32).

    Returns:
        ``N(0, 1)`` values, shape (B, *shape).
    """
    n = math.prod(shape)
    if n > 2**32:
        raise ValueError(f"at most 2^32 values per seed, asked for {n}")
    pairs = (n + 1) // 2
    work = torch.float64 if dtype == torch.float64 else torch.float32
    k1, k2 = _keys(seed)
    block = _CPU_BLOCK if seed.device.type == "cpu" else max(1, pairs)
    out = torch.empty(k1.shape[0], pairs, 2, device=seed.device, dtype=work)  # (B, pairs, 2)
    for a in range(0, pairs, block):
        b = min(pairs, a + block)
        out[:, a:b] = _box_muller(_bits(k1, k2, 2 * a, 2 * b).view(-1, b - a, 2), work)
    return out.view(-1, 2 * pairs)[:, :n].to(dtype).reshape(-1, *shape)
