"""What every data source yields, and the seeded helpers they share.

A *sample* is a dict of tensors:

- ``frames``: float32 sRGB in [0, 1], near to far, shape ``(N, 3, H, W)``;
- ``focus_distances_m``: float32, shape ``(N,)``, increasing;
- ``depth``: float32 metres, shape ``(1, H, W)``, 0 = invalid;

plus ``name`` (str) for evaluation items, and ``camera`` (``io.stack.Camera``) where the source knows the optics.
Sources are deterministic: ``item(i)`` always returns the same full-size sample and ``draw(g, ...)`` depends only on
the generator's state, so a sample is a function of (seed, index) whatever the worker or rank that builds it.

Synthetic sources also have ``prepare(g, size, n_frames)``: the sample before rendering (``data.prepared``),
which the training mixture (``focalcli.train.mixture``) augments and renders in the loader worker or on the
training device.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from focalcli.errors import InputError

__all__ = ["Source", "pick", "random_crop_flip", "sample_generator", "subset_indices"]


class Source(Protocol):
    """A data source: indexed full-size items for evaluation, seeded random crops for training."""

    name: str  # e.g. "ddff", "fod500", "stacks", "synth", "procedural"

    def __len__(self) -> int:
        """Number of evaluation items."""

    def item(self, index: int) -> dict:
        """Full-size evaluation item ``index`` (with a ``name``)."""

    def draw(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None) -> dict:
        """A training sample of spatial ``size`` drawn with ``g``; ``n_frames`` is a hint synthetic sources follow."""


def sample_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from integer keys (seed, step, index, ...) through numpy's SeedSequence hashing.

    Different key tuples give unrelated streams, and the same keys always give the same stream.
    """
    state = np.random.SeedSequence([int(k) % 2**63 for k in keys]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))


def random_crop_flip(sample: dict, size: tuple[int, int], g: torch.Generator) -> dict:
    """Crop ``sample`` to ``size`` at a random place and flip it left-right with probability 1/2.

    Frames smaller than ``size`` are an error (training crops never upsample).

    Raises:
        InputError: the sample is smaller than ``size``.
    """
    frames, depth = sample["frames"], sample["depth"]
    _, _, h, w = frames.shape
    ch, cw = size
    if h < ch or w < cw:
        raise InputError(f"{sample.get('name', 'a sample')}: {w}x{h} is smaller than the training crop {cw}x{ch}")
    y = int(torch.randint(0, h - ch + 1, (1,), generator=g))
    x = int(torch.randint(0, w - cw + 1, (1,), generator=g))
    frames = frames[:, :, y : y + ch, x : x + cw]  # (N, 3, ch, cw)
    depth = depth[:, y : y + ch, x : x + cw]  # (1, ch, cw)
    if bool(torch.rand((), generator=g) < 0.5):
        frames, depth = frames.flip(-1), depth.flip(-1)
    return {"frames": frames.contiguous(), "focus_distances_m": sample["focus_distances_m"],
            "depth": depth.contiguous()}


def pick(g: torch.Generator, n: int) -> int:
    """A uniform index in ``[0, n)`` drawn with ``g``."""
    return int(torch.randint(0, n, (1,), generator=g))


def subset_indices(total: int, n: int, g: torch.Generator) -> list[int]:
    """Which ``n`` of ``total`` frames make a random sub-schedule: a window of ``m`` consecutive frames (``m``
    uniform in [n, total]) and ``n`` indices spread evenly over it, increasing. All frames when ``n >= total``."""
    if n >= total or n < 1:
        return list(range(total))
    m = int(torch.randint(n, total + 1, (), generator=g))
    start = int(torch.randint(0, total - m + 1, (), generator=g))
    # spacing (m - 1) / (n - 1) >= 1, so the rounded indices are distinct and increasing
    return torch.linspace(start, start + m - 1, n, dtype=torch.float64).round().long().tolist()
