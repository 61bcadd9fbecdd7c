"""The weighted training mixture of data sources (``focalcli.data``) and the step-indexed batch sampler.

Determinism: the training sample at (step, j) (j = position in the *global* batch) is a function of
``(seed, step, j)`` alone. Which source and stack length a step uses is drawn from ``(seed, step)``, so every rank and
every loader worker agrees; resuming at step s replays exactly the batches an uninterrupted run would have seen,
and K ranks with local batch B/K see the same samples as one process with batch B.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Dataset, Sampler

from focalcli.data.base import Source, sample_generator
from focalcli.data.prepared import render_one
from focalcli.errors import ConfigError
from focalcli.train.augment import AugmentOptions, augment, augment_prepared

__all__ = ["RENDER_MODES", "MixtureDataset", "StepBatchSampler"]

RENDER_MODES = ("workers", "device")  # where synthetic training samples are rendered (data.prepared)


class MixtureDataset(Dataset):
    """Training samples from weighted sources, keyed by ``(step, j)``.

    Args:
        sources: the opened sources.
        weights: one positive weight per source.
        seed: the run's seed.
        crop: spatial size ``(H, W)`` of every sample.
        n_frames: inclusive range of stack lengths, drawn once per step (synthetic sources render that many frames,
            longer stacks give sub-schedules when ``augment.subsets``).
        augment: the augmentation applied to every sample (``train.augment``); None = none.
        render: where synthetic samples are rendered: ``workers`` (here: the sample comes out rendered) or
            ``device`` (the sample comes out prepared, for ``prepared.render_prepared`` on the training device).
            The sample is the same either way (to float rounding); other sources always come out rendered.

    Raises:
        ConfigError: no source, a weight per source missing, or an unknown ``render``.
    """

    def __init__(self, sources: Sequence[Source], weights: Sequence[float], *, seed: int, crop: tuple[int, int],
                 n_frames: tuple[int, int] = (5, 5), augment: AugmentOptions | None = None,
                 render: str = "workers"):
        if len(sources) != len(weights) or not sources:
            raise ConfigError("the training mixture needs at least one source and one weight per source")
        if render not in RENDER_MODES:
            raise ConfigError(f"unknown render mode {render!r}; use {' or '.join(RENDER_MODES)}")
        self.render = render
        self.sources = list(sources)
        self.weights = torch.tensor([float(w) for w in weights], dtype=torch.float64)
        self.seed, self.crop, self.n_frames = int(seed), tuple(crop), tuple(n_frames)
        self.augment = augment

    def step_choice(self, step: int) -> tuple[int, int]:
        """``(source index, stack length)`` used by every sample of ``step``."""
        g = sample_generator(self.seed, step, 0)
        source = int(torch.multinomial(self.weights, 1, generator=g))
        lo, hi = self.n_frames
        return source, int(torch.randint(lo, hi + 1, (1,), generator=g))

    def __getitem__(self, key: tuple[int, int]) -> dict:
        step, j = key
        source, n = self.step_choice(step)
        g = sample_generator(self.seed, step, j + 1)
        src = self.sources[source]
        if hasattr(src, "prepare"):  # synthetic: augmented before rendering, rendered here or on the device
            s = augment_prepared(src.prepare(g, self.crop, n), g, self.augment)
            return s if self.render == "device" else render_one(s)
        s = src.draw(g, self.crop, n)
        if self.augment is not None:
            s = augment(s, g, n, self.augment)
        return {k: s[k] for k in ("frames", "focus_distances_m", "depth")}

    def __len__(self) -> int:  # samples are unlimited; the sampler decides how many are drawn
        return 2**62


class StepBatchSampler(Sampler):
    """Yields this rank's keys ``[(step, rank * B_local + j) for j < B_local]`` for steps ``start .. stop - 1``.

    Raises:
        ConfigError: the global batch is not a multiple of the world size.
    """

    def __init__(self, start: int, stop: int, global_batch: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ConfigError(f"batch size {global_batch} is not a multiple of the {world_size} processes")
        self.start, self.stop, self.rank = start, stop, rank
        self.local = global_batch // world_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start, self.stop):
            yield [(step, self.rank * self.local + j) for j in range(self.local)]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)
