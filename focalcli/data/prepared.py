"""Synthetic training samples in two halves: prepared on the CPU, rendered in batches on any device.

A synthetic source's training sample is *prepared* in a data-loader worker (``SyntheticSource.prepare`` then
``train.augment.augment_prepared``): the scene is decoded, resized to its virtual width and cropped, its
``SampleParams`` are drawn, the rotation and flip are applied to colour and depth, and the sensor-noise levels, a
noise seed and the bit depth are fixed (``with_noise``). A prepared sample is a dict:

- ``rgb``: float32 sRGB in [0, 1], shape ``(3, H, W)``, geometry already applied;
- ``depth``: float32 metres, shape ``(1, H, W)``, 0 = invalid (the label; holes are filled for rendering only);
- ``params``: the ``SampleParams`` left to render (camera, focus distances, PSF, exposure, colour gains, noise);
- ``method``: ``layered`` or ``gather``; ``bit_depth``: quantisation after the noise (0 = float frames);
- ``noise_seed``: int64 scalar, the seed of the sample's device-independent noise (``synth.noise``).

``render_prepared`` renders a collated batch of them with ``synth.batch.render_batch`` on the device it is given.
Training renders either in the workers (``TrainConfig.render = "workers"``: a batch of one per sample, on the CPU)
or on the training device (``"device"``: the whole batch before the model step); the recipe is the same, and a
sample does not depend on its batch, so both give the same sample to float rounding (8-bit quantisation may move a
value that lies on a rounding boundary by one level).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from focalcli.synth.batch import render_batch
from focalcli.synth.render import SynthConfig

__all__ = ["collate_samples", "is_prepared", "render_one", "render_prepared", "with_noise"]

_STACKED = ("rgb", "depth", "noise_seed")  # prepared keys stacked into tensors; the others become lists


def with_noise(sample: dict, g: torch.Generator, *, shot: float = 0.0, read: float = 0.0, bit_depth: int = 0
               ) -> dict:
    """Fix a sample's sensor noise before it is rendered: the ``params``' noise levels become ``shot`` and
    ``read``, ``bit_depth`` is the quantisation after the noise (0 = float frames), and an int64 ``noise_seed`` is
    drawn from ``g`` (the seed of the renderer's device-independent noise, ``synth.noise``)."""
    seed = torch.randint(0, 2**62, (), generator=g, dtype=torch.int64)
    return {**sample, "params": replace(sample["params"], shot_noise=shot, read_noise=read), "noise_seed": seed,
            "bit_depth": bit_depth}


def is_prepared(batch: dict) -> bool:
    """Whether a sample or a collated batch is prepared (still to be rendered) rather than rendered frames."""
    return "params" in batch


def collate_samples(samples: Sequence[dict]) -> dict:
    """The data loader's collate function: rendered samples as ``default_collate`` does; prepared samples with
    ``rgb`` (B, 3, H, W), ``depth`` (B, 1, H, W) and ``noise_seed`` (B,) stacked, the rest as lists (``params``
    stay ``SampleParams``)."""
    from torch.utils.data import default_collate

    if not is_prepared(samples[0]):
        return default_collate(list(samples))
    out = {k: torch.stack([s[k] for s in samples]) for k in _STACKED}
    out.update({k: [s[k] for s in samples] for k in samples[0] if k not in _STACKED})
    return out


@torch.no_grad()
def render_prepared(batch: dict, device: torch.device | str) -> dict:
    """Render a collated batch of prepared samples on ``device`` (``synth.batch.render_batch``).

    Samples with different render methods or bit depths (``render_method = "mixed"``) are rendered in one call per
    kind and put back in place; a sample's frames do not depend on the rest of its batch.

    Returns:
        ``frames`` (B, N, 3, H, W) sRGB in [0, 1], ``focus_distances_m`` (B, N) float32 near to far and ``depth``
        (B, 1, H, W) metres (0 = invalid), all on ``device``.

    Raises:
        InputError: the samples have different frame counts, or a sample has no valid depth.
    """
    device = torch.device(device)
    rgb = batch["rgb"].to(device, non_blocking=True)  # (B, 3, H, W)
    depth = batch["depth"].to(device, non_blocking=True)  # (B, 1, H, W)
    seeds, params = batch["noise_seed"], batch["params"]
    groups: dict[tuple[str, int], list[int]] = {}
    for i, kind in enumerate(zip(batch["method"], batch["bit_depth"], strict=True)):
        groups.setdefault(kind, []).append(i)
    if len(groups) == 1:
        [(method, bits)] = list(groups)
        frames, focus = render_batch(rgb, depth, params, config=SynthConfig(method=method, bit_depth=bits),
                                     noise_seed=seeds)
        return {"frames": frames, "focus_distances_m": focus, "depth": depth}
    frames = focus = None
    for (method, bits), idx in groups.items():
        at = torch.tensor(idx, device=device)
        part, fd = render_batch(rgb[at], depth[at], [params[i] for i in idx], noise_seed=seeds[idx],
                                config=SynthConfig(method=method, bit_depth=bits))  # (b, N, 3, H, W), (b, N)
        if frames is None:
            frames = part.new_empty((rgb.shape[0], *part.shape[1:]))
            focus = fd.new_empty((rgb.shape[0], fd.shape[1]))
        frames[at], focus[at] = part, fd
    return {"frames": frames, "focus_distances_m": focus, "depth": depth}


def render_one(sample: dict) -> dict:
    """Render one prepared sample on the CPU, as a loader worker does: ``frames`` (N, 3, H, W),
    ``focus_distances_m`` (N,), ``depth`` (1, H, W)."""
    out = render_prepared(collate_samples([sample]), "cpu")
    return {k: out[k][0] for k in ("frames", "focus_distances_m", "depth")}
