"""Thin-lens optics: aperture, circle of confusion, diopters, pixel pitch and focus schedules.

Pure functions. Lengths are in metres unless a name says otherwise (``_mm``, ``_um``, ``_px``). Arguments may be
Python floats or tensors (they broadcast); with tensors the functions are differentiable.

For a thin lens of focal length f and f-number N focused at distance s, a point at distance d is imaged as a disk
(the circle of confusion, CoC) of diameter on the sensor

    A = f / N                                        (aperture diameter)
    c(d) = A * f / (s - f) * |d - s| / d             (metres on the sensor)
         = K(s) * |1/s - 1/d|,   K(s) = A * f * s / (s - f)

so the blur is linear in inverse depth (diopters, 1/m). In pixels it is c / pixel_pitch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from focalcli.io.depth import valid_depth

__all__ = [
    "MIN_F_NUMBER",
    "aperture_diameter",
    "coc_diameter",
    "coc_gain",
    "coc_pixels",
    "depth_from_coc",
    "diopters",
    "distance_from_diopters",
    "hyperfocal_distance",
    "pixel_pitch_um",
    "schedule_depth_percentiles",
    "schedule_fixed",
    "schedule_random",
    "schedule_uniform_diopters",
]

Number = float | torch.Tensor
MIN_F_NUMBER = 0.5  # the limit of a lens in air: N = 1 / (2 NA) with numerical aperture NA <= 1


def aperture_diameter(focal_length: Number, f_number: Number) -> Number:
    """Entrance-pupil (aperture) diameter ``A = f / N`` in metres (``focal_length`` in metres)."""
    return focal_length / f_number


def coc_gain(focus: Number, focal_length: Number, f_number: Number) -> Number:
    """``K(s) = A f s / (s - f)`` in metres x metres: the CoC diameter (m) per diopter of defocus ``|1/s - 1/d|``.

    Args:
        focus: focus distance s (m), must exceed the focal length.
        focal_length: f (m).
        f_number: N.
    """
    return aperture_diameter(focal_length, f_number) * focal_length * focus / (focus - focal_length)


def coc_diameter(depth: Number, focus: Number, focal_length: Number, f_number: Number) -> Number:
    """Circle-of-confusion diameter on the sensor, ``c(d) = A f / (s - f) * |d - s| / d``, in metres.

    Args:
        depth: object distance d (m), > 0.
        focus: focus distance s (m), > focal length.
        focal_length: f (m).
        f_number: N.

    Returns:
        c in metres (broadcast shape of the inputs).
    """
    a = aperture_diameter(focal_length, f_number)
    return a * focal_length / (focus - focal_length) * abs(depth - focus) / depth


def coc_pixels(depth: Number, focus: Number, focal_length: Number, f_number: Number, pixel_pitch: Number) -> Number:
    """CoC diameter in pixels: ``coc_diameter(...) / pixel_pitch`` (``pixel_pitch`` in metres)."""
    return coc_diameter(depth, focus, focal_length, f_number) / pixel_pitch


def depth_from_coc(coc: Number, focus: Number, focal_length: Number, f_number: Number, *, behind: bool) -> Number:
    """Invert ``coc_diameter``: the object distance (m) whose CoC is ``coc`` (m), behind or in front of the focus.

    ``1/d = 1/s -+ c / K(s)``; for ``behind`` with ``c >= K(s)/s`` the point is at or beyond infinity (returns inf).
    """
    k = coc_gain(focus, focal_length, f_number)
    inv = 1.0 / focus - coc / k if behind else 1.0 / focus + coc / k
    if isinstance(inv, torch.Tensor):
        return torch.where(inv > 0, 1.0 / inv.clamp_min(1e-30), torch.full_like(inv, math.inf))
    return 1.0 / inv if inv > 0 else math.inf


def hyperfocal_distance(focal_length: Number, f_number: Number, coc_limit: Number) -> Number:
    """Hyperfocal distance ``H = f^2 / (N c) + f`` (m) for an acceptable CoC ``coc_limit`` (m)."""
    return focal_length**2 / (f_number * coc_limit) + focal_length


def diopters(distance: Number) -> Number:
    """Inverse distance ``1 / d`` in diopters (1/m)."""
    return 1.0 / distance


def distance_from_diopters(diopter: Number) -> Number:
    """Distance ``1 / D`` in metres from diopters (1/m)."""
    return 1.0 / diopter


def pixel_pitch_um(sensor_width_mm: float, image_width_px: int) -> float:
    """Pixel pitch in micrometres of an image ``image_width_px`` wide spanning a sensor ``sensor_width_mm`` wide.

    ``pitch_um = 1000 * sensor_width_mm / image_width_px`` (a 36 mm sensor at 640 px gives 56.25 um).
    """
    if sensor_width_mm <= 0 or image_width_px <= 0:
        raise ValueError(f"sensor width ({sensor_width_mm} mm) and image width ({image_width_px} px) must be > 0")
    return 1000.0 * sensor_width_mm / image_width_px


# Focus schedules: all return float tensors (N,) of focus distances in metres, increasing (near to far).


def schedule_fixed(distances: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """A given list of focus distances (m), sorted near to far.

    Raises:
        ValueError: empty, non-positive, non-finite or repeated distances.
    """
    d = torch.as_tensor(distances, dtype=torch.float64).flatten()
    if d.numel() == 0 or not bool(torch.isfinite(d).all()) or bool((d <= 0).any()):
        raise ValueError(f"focus distances must be positive finite numbers, got {d.tolist()}")
    d = torch.sort(d).values
    if bool((d[1:] == d[:-1]).any()):
        raise ValueError(f"focus distances repeat: {d.tolist()}")
    return d.float()


def schedule_uniform_diopters(near: float, far: float, n: int) -> torch.Tensor:
    """``n`` focus distances (m) evenly spaced in diopters from ``near`` to ``far`` (both included; n=1: near).

    Even spacing in diopters gives even steps in blur, since the CoC is linear in ``1/d``. ``far`` may be ``inf``.
    """
    if n < 1:
        raise ValueError(f"need at least one frame, got {n}")
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    inv = torch.linspace(1.0 / near, 1.0 / far, n, dtype=torch.float64)  # (N,) diopters, decreasing
    inv = inv.clamp_min(1e-6)  # inf -> 1e6 m, still finite
    return (1.0 / inv).float()


def schedule_depth_percentiles(
    depth: torch.Tensor, n: int, low: float = 5.0, high: float = 95.0, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """``n`` focus distances uniform in diopters between the ``low`` and ``high`` percentiles of a depth map.

    Args:
        depth: depth in metres, any shape; values <= 0 or non-finite are ignored.
        n: number of frames.
        low, high: percentiles in [0, 100] giving the nearest and farthest focus.
        valid: optional mask of pixels to use.

    Raises:
        ValueError: no valid depth.
    """
    ok = valid_depth(depth)
    if valid is not None:
        ok &= valid.bool()
    values = depth[ok].double()
    if values.numel() == 0:
        raise ValueError("depth map has no valid values")
    near, far = (float(v) for v in torch.quantile(_subsample(values), torch.tensor([low, high], dtype=values.dtype)
                                                  / 100.0))
    if far <= near * (1 + 1e-6):  # (almost) flat scene: spread +-5 % around it
        near, far = near * 0.95, far * 1.05
    return schedule_uniform_diopters(near, far, n)


def _subsample(values: torch.Tensor, limit: int = 1 << 20) -> torch.Tensor:
    # torch.quantile refuses very large inputs; an even stride keeps it deterministic.
    step = max(1, values.numel() // limit)
    return values[::step]


def schedule_random(
    n: int,
    near_range: tuple[float, float],
    far_range: tuple[float, float],
    generator: torch.Generator,
    jitter: float = 0.0,
) -> torch.Tensor:
    """Random schedule for training: bounds drawn uniformly in diopters, frames uniform in diopters between them.

    ``near`` is drawn uniformly in diopters from ``near_range``, ``far`` likewise from ``far_range`` and then raised
    to at least ``1.05 * near``. The frames sit at ``n`` evenly spaced diopters from ``1/near`` to ``1/far``
    (step ``s``). With ``jitter = j > 0`` each frame's diopter then moves by its own offset drawn uniformly from
    ``[-j * s, +j * s]``. Because ``j < 0.5``, neighbours cannot pass each other, so the order stays near to far
    without sorting; the first and last frame may land up to ``j * s`` outside ``[1/far, 1/near]``.

    Args:
        n: number of frames.
        near_range: (min, max) of the nearest focus distance (m).
        far_range: (min, max) of the farthest focus distance (m).
        generator: the only source of randomness.
        jitter: ``j`` in ``[0, 0.5)``, the largest move of a frame as a fraction of the diopter step (0 = even steps).

    Returns:
        (N,) float32 focus distances in metres, increasing.

    Raises:
        ValueError: ``jitter`` outside ``[0, 0.5)``.
    """
    if not 0.0 <= jitter < 0.5:
        raise ValueError(f"jitter must be in [0, 0.5) (a fraction of the diopter step), got {jitter}")

    def draw(lo: float, hi: float) -> float:
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return 1.0 / (1.0 / hi + u * (1.0 / lo - 1.0 / hi))  # uniform in diopters between lo and hi

    near = draw(*near_range)
    far = max(draw(*far_range), near * 1.05)
    inv = torch.linspace(1.0 / near, 1.0 / far, n, dtype=torch.float64)  # (N,) decreasing diopters
    if jitter > 0 and n > 1:
        step = inv[0] - inv[1]  # > 0
        inv = inv + (2 * torch.rand(n, generator=generator, dtype=torch.float64) - 1) * jitter * step
    return (1.0 / inv).float()
