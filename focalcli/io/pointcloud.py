"""Coloured point clouds from metric depth: back-projection through a pinhole camera, binary PLY files.

The camera of a focal stack: pixel pitch ``p`` on the sensor and, for a lens of focal length ``f`` focused at
distance ``s``, an image distance ``v`` with ``1/v = 1/f - 1/s`` (thin lens). A pinhole at the lens centre with
focal length ``v`` maps a point at depth ``Z`` and sensor offset ``(u - cx) * p`` to ``X = (u - cx) * p * Z / v``.
Using ``v`` rather than ``f`` matters in macro work: at 1:1 magnification ``v = 2 f``, and ``f`` alone would make the
object twice as wide as it is. Coordinates are OpenCV's camera frame: x right, y down, z forward, in metres.
"""

from __future__ import annotations

import os

import numpy as np

from focalcli.errors import InputError
from focalcli.io.atomic import atomic_path
from focalcli.io.depth import valid_depth

__all__ = ["depth_to_points", "image_distance_m", "read_ply", "write_ply"]


def image_distance_m(focal_length_m: float, focus_distance_m: float) -> float:
    """Lens-to-sensor distance ``v`` of a thin lens focused at ``focus_distance_m`` (``1/v = 1/f - 1/s``).

    Raises:
        InputError: the focus distance is not beyond the focal length (no real image).
    """
    if focus_distance_m <= focal_length_m:
        raise InputError(f"focus distance {focus_distance_m:g} m is not beyond the focal length "
                         f"{focal_length_m:g} m: no real image")
    return 1.0 / (1.0 / focal_length_m - 1.0 / focus_distance_m)


def depth_to_points(depth: np.ndarray, colors: np.ndarray, *, pixels_per_m: float, step: int = 1
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every valid pixel of a metric depth map.

    Args:
        depth: HxW depth in metres (0 or non-finite = invalid, left out).
        colors: HxWx3 float RGB in [0, 1] (e.g. the all-in-focus image).
        pixels_per_m: the pinhole focal length in pixels, ``v / pixel pitch`` (see the module docstring).
        step: keep every ``step``-th pixel in both directions.

    Returns:
        ``(points, rgb)``: float32 ``(P, 3)`` XYZ in metres and uint8 ``(P, 3)`` colours.

    Shape:
        ``depth`` ``(H, W)``, ``colors`` ``(H, W, 3)`` -> ``(P, 3)``, ``(P, 3)``.
    """
    h, w = depth.shape
    v, u = np.mgrid[0:h:step, 0:w:step].astype(np.float32)  # (h', w') each
    z = depth[::step, ::step].astype(np.float32)
    keep = valid_depth(z)
    z = z[keep]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    x = (u[keep] - cx) * z / pixels_per_m
    y = (v[keep] - cy) * z / pixels_per_m
    rgb = np.clip(np.rint(colors[::step, ::step][keep] * 255), 0, 255).astype(np.uint8)  # (P, 3)
    return np.stack([x, y, z], axis=1).astype(np.float32), rgb


_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def write_ply(path: str | os.PathLike, points: np.ndarray, rgb: np.ndarray, *, comments: tuple[str, ...] = ()
              ) -> None:
    """Write a binary little-endian PLY of coloured points (``x y z`` float32, ``red green blue`` uint8), atomically.

    Shape:
        ``points`` ``(P, 3)``, ``rgb`` ``(P, 3)``.
    """
    data = np.empty(len(points), _DTYPE)
    data["x"], data["y"], data["z"] = points[:, 0], points[:, 1], points[:, 2]
    data["red"], data["green"], data["blue"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    lines = ["ply", "format binary_little_endian 1.0", *(f"comment {c}" for c in comments),
             f"element vertex {len(points)}", "property float x", "property float y", "property float z",
             "property uchar red", "property uchar green", "property uchar blue", "end_header"]
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(("\n".join(lines) + "\n").encode("ascii"))
        f.write(data.tobytes())


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a PLY written by ``write_ply``: ``(points (P, 3) float32, rgb (P, 3) uint8)``.

    Raises:
        InputError: not such a file.
    """
    with open(path, "rb") as f:
        raw = f.read()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply\n") or end < 0:
        raise InputError(f"{path}: not a PLY file")
    header = raw[:end].decode("ascii").splitlines()
    count = next((int(line.split()[2]) for line in header if line.startswith("element vertex")), None)
    if count is None or "format binary_little_endian 1.0" not in header:
        raise InputError(f"{path}: not a binary PLY of vertices")
    data = np.frombuffer(raw, _DTYPE, count=count, offset=end + len(b"end_header\n"))
    return np.stack([data["x"], data["y"], data["z"]], axis=1), np.stack([data["red"], data["green"], data["blue"]],
                                                                         axis=1)
