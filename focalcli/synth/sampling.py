"""Random and fixed synthesis parameters, drawn only from a passed ``torch.Generator`` and recorded in full.

A ``SampleParams`` says everything needed to re-render one stack: camera, focus distances, PSF, noise, exposure,
crop, flip and colour gains. ``focal synth`` builds fixed ones from its options (``fixed_params``); training
loaders draw random ones (``sample_params``) and render them with ``synth.render.render_sample``.

Focus schedules (``parse_schedule``):
- ``depth`` or ``depth:LOW,HIGH``: uniform in diopters between the LOW and HIGH percentiles of the depth map
  (default 5, 95).
- ``uniform:NEAR,FAR``: uniform in diopters between NEAR and FAR metres.
- ``list:D1,D2,...``: these focus distances (metres); the frame count is the list's length.
- ``random``: bounds drawn around the depth percentiles (near in [P2, P20], far in [P80, P98]) from the generator.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from focalcli.errors import ConfigError, InputError
from focalcli.io.depth import valid_depth
from focalcli.io.stack import Camera
from focalcli.optics import thinlens

__all__ = [
    "SampleParams",
    "SamplingRanges",
    "Schedule",
    "agnostic_schedule",
    "fixed_params",
    "focus_schedule",
    "parse_schedule",
    "sample_params",
]


@dataclass(frozen=True)
class Schedule:
    """A focus schedule: ``kind`` is depth, uniform, list or random; ``values`` its numbers (see module doc)."""

    kind: str = "depth"
    values: tuple[float, ...] = (5.0, 95.0)

    def __str__(self) -> str:
        return self.kind + (":" + ",".join(f"{v:g}" for v in self.values) if self.values else "")


def parse_schedule(text: str) -> Schedule:
    """Parse ``depth[:LOW,HIGH]``, ``uniform:NEAR,FAR``, ``list:D1,D2,...`` or ``random``.

    Raises:
        ConfigError: unknown kind or bad numbers.
    """
    kind, _, rest = text.strip().partition(":")
    try:
        values = tuple(float(v) for v in rest.split(",")) if rest.strip() else ()
    except ValueError as e:
        raise ConfigError(f"schedule {text!r}: numbers expected after ':' ({e})") from e
    if kind == "depth":
        values = values or (5.0, 95.0)
        if len(values) != 2 or not 0 <= values[0] < values[1] <= 100:
            raise ConfigError(f"schedule {text!r}: use depth:LOW,HIGH with 0 <= LOW < HIGH <= 100")
    elif kind == "uniform":
        if len(values) != 2 or not 0 < values[0] < values[1]:
            raise ConfigError(f"schedule {text!r}: use uniform:NEAR,FAR in metres with 0 < NEAR < FAR")
    elif kind == "list":
        if not values or any(not math.isfinite(v) or v <= 0 for v in values) or len(set(values)) != len(values):
            raise ConfigError(f"schedule {text!r}: use list:D1,D2,... with distinct positive distances in metres")
    elif kind == "random":
        if values:
            raise ConfigError(f"schedule {text!r}: 'random' takes no numbers")
    else:
        raise ConfigError(f"unknown schedule {text!r}; use depth[:LOW,HIGH], uniform:NEAR,FAR, list:D1,... or random")
    return Schedule(kind, values)


def focus_schedule(
    schedule: Schedule, depth: torch.Tensor, n: int, generator: torch.Generator | None = None,
    min_distance: float = 0.0,
) -> torch.Tensor:
    """Focus distances (N,) in metres, near to far, for a scene.

    Args:
        schedule: the schedule.
        depth: the scene's depth in metres (holes <= 0 ignored), any shape.
        n: frame count (ignored by ``list``).
        generator: needed by ``random``.
        min_distance: every focus distance is kept above this (the focal length), by 1 %.

    Raises:
        InputError: the depth map has no valid values.
        ConfigError: ``random`` without a generator.
    """
    valid = valid_depth(depth)
    if not bool(valid.any()):
        raise InputError("depth map has no valid values (all 0, negative or NaN)")
    if schedule.kind == "list":
        fd = thinlens.schedule_fixed(schedule.values)
    elif schedule.kind == "uniform":
        fd = thinlens.schedule_uniform_diopters(schedule.values[0], schedule.values[1], n)
    elif schedule.kind == "depth":
        fd = thinlens.schedule_depth_percentiles(depth.cpu(), n, *schedule.values)
    else:
        if generator is None:
            raise ConfigError("the random schedule needs a torch.Generator")
        p = torch.quantile(depth[valid].double().cpu()[:: max(1, int(valid.sum()) >> 20)],
                           torch.tensor([0.02, 0.20, 0.80, 0.98], dtype=torch.float64)).tolist()
        fd = thinlens.schedule_random(n, (p[0], max(p[1], p[0] * 1.01)), (p[2], max(p[3], p[2] * 1.01)), generator)
    return fd.clamp_min(min_distance * 1.01)


@dataclass(frozen=True)
class SamplingRanges:
    """Ranges for random training samples (log-uniform for optics and noise, uniform otherwise).

    The defaults describe use: what ``focal predict`` sees at its working resolution (``--max-size`` 512), stacks of
    2-16 frames focused the way a photographer would, and 8-bit sensor noise.
    """

    f_number: tuple[float, float] = (1.4, 5.6)  # N, log-uniform (wide apertures: focal stacks are shot for blur)
    focal_length_mm: tuple[float, float] = (35.0, 105.0)  # f, log-uniform
    sensor_width_mm: tuple[float, float] = (23.5, 36.0)  # APS-C to full frame
    # Width (px) of the whole virtual image a training crop is a window of: pixel pitch = sensor width / this width,
    # so a crop shows the blur (in px) a camera records at that resolution. Drawn around the model's working
    # resolution (focal predict --max-size 512): the blur the model learns is the blur it will see.
    image_width_px: tuple[float, float] = (384.0, 768.0)  # log-uniform
    frames: tuple[int, int] = (2, 16)  # stack length, inclusive
    agnostic_share: float = 0.6  # share of scene-agnostic schedules (the rest: bounds near depth percentiles)
    agnostic_near_m: tuple[float, float] = (0.25, 2.0)  # scene-agnostic: nearest focus (m), log-uniform
    agnostic_ratio: tuple[float, float] = (1.5, 40.0)  # scene-agnostic: farthest / nearest focus, log-uniform
    psfs: tuple[str, ...] = ("disk", "gaussian", "power")  # PSF families, drawn uniformly
    psf_power: tuple[float, float] = (2.0, 16.0)  # p of the power PSF, log-uniform
    shot_noise: tuple[float, float] = (1e-5, 3e-3)  # variance per unit linear signal, log-uniform (ISO 100-6400)
    read_noise: tuple[float, float] = (2e-4, 5e-3)  # std in linear full-scale units, log-uniform
    gain_jitter: float = 0.03  # std of log exposure per frame
    crop: tuple[int, int] | None = None  # (H, W) random crop, or None
    flip: bool = True  # random horizontal flip
    color_jitter: float = 0.1  # per-channel gain in exp(+-color_jitter)


@dataclass(frozen=True)
class SampleParams:
    """Everything needed to re-render one stack (all JSON-serialisable via ``to_json``)."""

    camera: Camera
    focus_distances_m: tuple[float, ...]
    schedule: str = "depth:5,95"
    psf: str = "disk"
    psf_power: float = 8.0
    shot_noise: float = 0.0
    read_noise: float = 0.0
    exposure: tuple[float, ...] | None = None  # linear gain per frame (near to far)
    crop: tuple[int, int, int, int] | None = None  # (top, left, height, width)
    flip: bool = False
    color_gains: tuple[float, float, float] | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d["camera"] = self.camera.to_json()
        return d


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    if lo <= 0:  # a range from zero has no log scale
        return _uniform(g, lo, hi)
    return math.exp(_uniform(g, math.log(lo), math.log(hi)))


def _choice(g: torch.Generator, options: tuple) -> object:
    return options[int(torch.randint(len(options), (), generator=g))]


def fixed_params(
    camera: Camera, schedule: Schedule, depth: torch.Tensor, frames: int, *, psf: str = "disk",
    psf_power: float = 8.0, shot_noise: float = 0.0, read_noise: float = 0.0,
) -> SampleParams:
    """Deterministic parameters from fixed options (what ``focal synth`` uses).

    Args:
        camera: complete camera (focal length, f-number, pixel pitch).
        schedule: focus schedule (``random`` is not allowed here; use ``sample_params``).
        depth: the scene's depth in metres, any shape.
        frames: frame count (``list`` schedules use their own length).
        psf, psf_power, shot_noise, read_noise: recorded as given (see ``SynthConfig``).
    """
    if schedule.kind == "random":
        raise ConfigError("the random schedule needs sample_params and a generator")
    fd = focus_schedule(schedule, depth, frames, min_distance=camera.focal_length_mm / 1000.0)
    return SampleParams(camera=camera, focus_distances_m=tuple(round(float(x), 6) for x in fd), schedule=str(schedule),
                        psf=psf, psf_power=psf_power, shot_noise=shot_noise, read_noise=read_noise)


def agnostic_schedule(
    generator: torch.Generator, depth: torch.Tensor, n: int, ranges: SamplingRanges = SamplingRanges(),
    tries: int = 20,
) -> tuple[float, float]:
    """Bounds ``(near, far)`` in metres of a scene-agnostic schedule, as a photographer would pick them.

    ``near`` is log-uniform in ``ranges.agnostic_near_m`` and ``far = near * ratio`` with the ratio log-uniform in
    ``ranges.agnostic_ratio``: the bounds do not follow the scene's depth percentiles, so parts of the scene may lie
    beyond either end. They are redrawn (up to ``tries`` times) until they overlap the scene's 5-95 % depth range, so
    the stack sees at least part of the scene in focus.
    """
    valid = valid_depth(depth)
    values = depth[valid].double()
    lo, hi = (float(v) for v in torch.quantile(values[:: max(1, values.numel() >> 20)],
                                               torch.tensor([0.05, 0.95], dtype=torch.float64)))
    near = far = 0.0
    for _ in range(tries):
        near = _log_uniform(generator, *ranges.agnostic_near_m)
        far = near * _log_uniform(generator, *ranges.agnostic_ratio)
        if near <= hi and far >= lo:
            break
    return near, far


def sample_params(
    generator: torch.Generator, depth: torch.Tensor, ranges: SamplingRanges = SamplingRanges(), *,
    image_width: float | None = None,
) -> SampleParams:
    """Draw random parameters for one training sample.

    Args:
        generator: the only source of randomness (CPU generator).
        depth: the scene's depth in metres, shape (1, H, W); sets the image size and the depth schedules.
        ranges: what to draw from.
        image_width: width (px) of the whole virtual image ``depth`` is a window of (see
            ``SamplingRanges.image_width_px``); the pixel pitch is the sensor width over it. None: ``depth``'s
            width (after ``ranges.crop``), i.e. the image is the whole frame.
    """
    H, W = depth.shape[-2:]
    g = generator
    crop = None
    if ranges.crop is not None:
        ch, cw = ranges.crop
        if ch > H or cw > W:
            raise InputError(f"crop {ch}x{cw} is larger than the image {H}x{W}")
        crop = (int(torch.randint(H - ch + 1, (), generator=g)), int(torch.randint(W - cw + 1, (), generator=g)),
                ch, cw)
        depth = depth[..., crop[0] : crop[0] + ch, crop[1] : crop[1] + cw]
    width = float(image_width) if image_width is not None else float(depth.shape[-1])
    f_mm = _log_uniform(g, *ranges.focal_length_mm)
    camera = Camera(focal_length_mm=round(f_mm, 4), f_number=round(_log_uniform(g, *ranges.f_number), 4),
                    pixel_pitch_um=round(1000.0 * _uniform(g, *ranges.sensor_width_mm) / width, 6))
    n = int(torch.randint(ranges.frames[0], ranges.frames[1] + 1, (), generator=g))
    if _uniform(g, 0.0, 1.0) < ranges.agnostic_share:
        near, far = agnostic_schedule(g, depth, n, ranges)
        schedule = Schedule("uniform", (round(near, 6), round(far, 6)))
    else:
        schedule = parse_schedule("random")
    fd = focus_schedule(schedule, depth, n, g, min_distance=f_mm / 1000.0)
    psf = _choice(g, ranges.psfs)
    exposure = torch.exp(torch.randn(len(fd), generator=g, dtype=torch.float64) * ranges.gain_jitter)
    gains = torch.exp((torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1) * ranges.color_jitter)
    return SampleParams(
        camera=camera,
        focus_distances_m=tuple(round(float(x), 6) for x in fd),
        schedule=str(schedule),
        psf=psf,
        psf_power=round(_log_uniform(g, *ranges.psf_power), 4) if psf == "power" else 8.0,
        shot_noise=_log_uniform(g, *ranges.shot_noise),
        read_noise=_log_uniform(g, *ranges.read_noise),
        exposure=tuple(round(float(x), 6) for x in exposure),
        crop=crop,
        flip=bool(ranges.flip and torch.rand((), generator=g) < 0.5),
        color_gains=tuple(round(float(x), 6) for x in gains),
    )
