"""Counter-based noise: a pure function of (seed, index), checked against plain Python integers."""

from __future__ import annotations

import math

import pytest
import torch

from focalcli.synth.noise import counter_bits, counter_normal

M = 0xFFFFFFFF


def _mix(x: int) -> int:
    """The hash with Python's unbounded integers (obviously free of overflow)."""
    x ^= x >> 16
    x = (x * 0x21F0AAAD) & M
    x ^= x >> 15
    x = (x * 0x735A2D97) & M
    return x ^ (x >> 15)


def _bits_reference(seed: int, count: int) -> list[int]:
    seed &= 0xFFFFFFFFFFFFFFFF
    k1 = _mix((seed & M) ^ _mix((seed >> 32) ^ 0x9E3779B9))
    k2 = _mix(k1 ^ 0x85EBCA6B)
    return [_mix(_mix(i ^ k1) ^ k2) for i in range(count)]


@pytest.mark.parametrize("seed", [0, 1, 2**40 + 7, -5, 2**63 - 1])
def test_bits_equal_the_plain_integer_hash(seed):
    assert counter_bits(torch.tensor([seed]), 300)[0].tolist() == _bits_reference(seed, 300)


def test_normal_is_deterministic_and_independent_of_the_batch():
    a = counter_normal(torch.tensor([3, 4]), (2, 5, 7))
    b = counter_normal(torch.tensor([4]), (2, 5, 7))
    assert a.shape == (2, 2, 5, 7) and a.dtype == torch.float32
    assert torch.equal(a[1], b[0])  # a sample's noise does not depend on its place in the batch
    assert torch.equal(counter_normal(torch.tensor([3, 4]), (2, 5, 7)), a)
    assert not torch.equal(a[0], a[1])
    odd = counter_normal(torch.tensor([9]), (3, 3), torch.float64)  # odd count: half a Box-Muller pair unused
    assert odd.dtype == torch.float64 and odd.shape == (1, 3, 3)


def test_normal_statistics():
    n = 1 << 18
    z = counter_normal(torch.arange(8), (n,)).double()  # (8, n)
    se = 1 / math.sqrt(n)
    assert z.mean(dim=1).abs().max() < 5 * se
    assert (z.var(dim=1) - 1).abs().max() < 5 * math.sqrt(2) * se
    assert (z[:, 1:] * z[:, :-1]).mean(dim=1).abs().max() < 5 * se  # no correlation between neighbours
    assert (z[1:] * z[:-1]).mean(dim=1).abs().max() < 5 * se  # nor between seeds 0, 1, 2, ...
    tail = (z.abs() > 3).double().mean()
    assert float(tail) == pytest.approx(math.erfc(3 / math.sqrt(2)), rel=0.05)


def test_too_many_values():
    with pytest.raises(ValueError):
        counter_bits(torch.tensor([0]), 2**32 + 1)
