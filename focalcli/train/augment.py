"""Training augmentation applied to every source alike: sub-schedules, rotations and flips, sensor noise.

What a camera records is noisy and quantised; what a photographer picks is any subset of focus positions. Sources
deliver clean stacks (``focal synth --random`` sets hold 16 frames at 16 bits; synthetic sources, see below), and
``augment`` turns each into a training sample that looks like use:

- ``subsets``: a stack with more frames than the step asks for gives a random *sub-schedule*: a window of ``m``
  consecutive frames (``m`` uniform in [n, M]) and ``n`` frames evenly spread over it, so frame spacing and the part
  of the scene in the focus range vary from sample to sample;
- ``rotate``: a random multiple of 90 degrees (square samples) and a left-right flip;
- ``noise``: shot + read noise in linear light (variance ``shot * x + read^2``, levels log-uniform per stack, the
  same sensor for every frame), back to sRGB, quantised to ``bit_depth`` bits;
- ``jpeg``: a share of the stacks is JPEG-compressed frame by frame (quality drawn per stack): real macro stacks
  mostly come as JPEGs, whose block artefacts add high-frequency energy to blurred frames that a focus measure must
  learn to ignore.

Synthetic sources are augmented *before* they are rendered (``augment_prepared``): the rotation and flip move the
scene's colour and depth (rendering commutes with them: every PSF is symmetric), and the noise levels go into the
sample's ``SampleParams`` with a noise seed, so the renderer adds the noise in linear light and quantises
(``data.prepared``), in the loader worker or on the training device alike.

Every draw comes from the passed generator, so a sample stays a function of (seed, step, index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from focalcli.data.base import subset_indices
from focalcli.data.prepared import with_noise
from focalcli.optics.defocus import linear_to_srgb, srgb_to_linear

__all__ = ["AugmentOptions", "augment", "augment_prepared", "jpeg_frames", "sensor_noise", "subset_frames"]


@dataclass(frozen=True)
class AugmentOptions:
    """Training augmentation (``augment`` in the training config)."""

    subsets: bool = True  # longer stacks give random sub-schedules of the step's length
    rotate: bool = True  # random 90-degree rotations (square samples) and flips
    noise: bool = True  # shot + read noise and quantisation, as a camera records
    shot_noise: tuple[float, float] = (1e-5, 3e-3)  # variance per unit linear signal, log-uniform
    read_noise: tuple[float, float] = (2e-4, 5e-3)  # std in linear full-scale units, log-uniform
    bit_depth: int = 8  # quantisation after the noise (0 = none)
    jpeg: float = 0.25  # share of stacks saved as JPEG (blocking and ringing, as in most real macro stacks)
    jpeg_quality: tuple[int, int] = (75, 95)  # JPEG quality, uniform


def _log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    if lo <= 0 or hi <= lo:
        return lo
    u = float(torch.rand((), generator=g, dtype=torch.float64))
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def subset_frames(sample: dict, n: int, g: torch.Generator) -> dict:
    """``n`` frames of a longer stack (``subset_indices``); frames stay near to far, a stack of at most ``n``
    frames is returned as it is."""
    total = sample["frames"].shape[0]
    if n >= total or n < 1:
        return sample
    idx = subset_indices(total, n, g)
    return {**sample, "frames": sample["frames"][idx], "focus_distances_m": sample["focus_distances_m"][idx]}


def sensor_noise(frames: torch.Tensor, shot: float, read: float, bit_depth: int, g: torch.Generator) -> torch.Tensor:
    """sRGB frames in [0, 1] -> the same scene recorded by a noisy sensor: linear light, ``x + sqrt(shot x +
    read^2) n``, sRGB, quantised to ``bit_depth`` bits (0 = not quantised). Any shape."""
    linear = srgb_to_linear(frames.float())
    if shot > 0 or read > 0:
        noise = torch.randn(linear.shape, generator=g, dtype=linear.dtype)
        linear = linear + torch.sqrt(shot * linear.clamp_min(0) + read**2) * noise
    out = linear_to_srgb(linear)
    if bit_depth:
        levels = float(2**bit_depth - 1)
        out = torch.round(out * levels) / levels
    return out


def jpeg_frames(frames: torch.Tensor, quality: int) -> torch.Tensor:
    """Each sRGB frame ``(N, 3, H, W)`` in [0, 1] through an 8-bit JPEG round trip at ``quality``."""
    import cv2
    import numpy as np

    out = []
    for f in frames:
        rgb = np.ascontiguousarray((f.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy())
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        dec = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else rgb
        out.append(torch.from_numpy(dec).permute(2, 0, 1).float() / 255.0)
    return torch.stack(out)


def _rotate(g: torch.Generator, *images: torch.Tensor) -> list[torch.Tensor]:
    """The same random multiple of 90 degrees (of 180 unless square) and left-right flip for each image (..., H, W)."""
    square = images[0].shape[-1] == images[0].shape[-2]
    k = int(torch.randint(0, 4, (), generator=g)) if square else 2 * int(torch.randint(0, 2, (), generator=g))
    out = [x.rot90(k, (-2, -1)) for x in images] if k else list(images)
    if bool(torch.rand((), generator=g) < 0.5):
        out = [x.flip(-1) for x in out]
    return out


def augment(sample: dict, g: torch.Generator, n_frames: int | None, options: AugmentOptions) -> dict:
    """Apply ``options`` to one training sample (``frames (N, 3, H, W)``, ``focus_distances_m (N,)``,
    ``depth (1, H, W)``; see ``data.base``)."""
    if options.subsets and n_frames:
        sample = subset_frames(sample, n_frames, g)
    frames, depth = sample["frames"], sample["depth"]
    if options.rotate:
        frames, depth = _rotate(g, frames, depth)
    if options.noise:
        shot = _log_uniform(g, *options.shot_noise)
        read = _log_uniform(g, *options.read_noise)
        frames = sensor_noise(frames, shot, read, options.bit_depth, g)
    if options.jpeg > 0 and float(torch.rand((), generator=g)) < options.jpeg:
        lo, hi = options.jpeg_quality
        frames = jpeg_frames(frames, int(torch.randint(lo, hi + 1, (), generator=g)))
    return {**sample, "frames": frames.contiguous(), "depth": depth.contiguous()}


def augment_prepared(sample: dict, g: torch.Generator, options: AugmentOptions | None) -> dict:
    """Apply ``options`` to a sample that is rendered afterwards (``SyntheticSource.prepare``).

    The draws are those of ``augment``: the rotation and flip move the scene's ``rgb`` and ``depth``; the noise
    levels replace the ``params``' own, and ``bit_depth`` is the quantisation the renderer applies after the noise
    (0 when the noise is off, as ``augment`` quantises only with its noise). Last, an int64 ``noise_seed`` for the
    renderer's device-independent noise (``synth.noise``) is drawn (``data.prepared.with_noise``). ``subsets`` does
    nothing here: a synthetic source renders the step's frame count; nor does ``jpeg`` (the frames do not exist yet).
    ``options`` None: no rotation, no noise, float frames.

    Returns:
        The sample with ``rgb`` (3, H, W), ``depth`` (1, H, W), ``params``, ``method``, ``noise_seed`` (int64
        scalar tensor) and ``bit_depth`` (int).
    """
    rgb, depth = sample["rgb"], sample["depth"]
    if options is not None and options.rotate:
        rgb, depth = _rotate(g, rgb, depth)
    shot = read = 0.0
    noisy = options is not None and options.noise
    if noisy:
        shot = _log_uniform(g, *options.shot_noise)
        read = _log_uniform(g, *options.read_noise)
    sample = {**sample, "rgb": rgb.contiguous(), "depth": depth.contiguous()}
    return with_noise(sample, g, shot=shot, read=read, bit_depth=options.bit_depth if noisy else 0)
