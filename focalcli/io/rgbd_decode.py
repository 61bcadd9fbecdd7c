"""Decoding one RGB-D scene (``load_rgbd``): one reader per ``RGBDScene.kind`` in one table, the PFM and
little-endian PGM readers, and pseudo-depth from disparity (the assumption is explained in ``focalcli.io.rgbd``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from focalcli.errors import InputError
from focalcli.io.depth import valid_depth
from focalcli.io.images import read_image
from focalcli.io.rgbd_scenes import RGBDScene

PSEUDO_NEAR_M = 1.0  # assumed distance of the largest valid disparity
PSEUDO_FAR_M = 2.0  # assumed distance of the smallest valid disparity


@dataclass
class RGBDSample:
    """A decoded scene: sRGB (3, H, W) float32 in [0, 1] and depth (1, H, W) float32 metres, 0 = invalid."""

    name: str
    rgb: torch.Tensor
    depth: torch.Tensor
    meta: dict = field(default_factory=dict)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e


def _header_size(path: Path, tokens: list[bytes], kind: str) -> tuple[int, int]:
    """Width and height from a PFM/PGM header: positive integers whose pixels fit in the file's 64-bit index."""
    try:
        w, h = int(tokens[1]), int(tokens[2])
    except ValueError as e:
        raise InputError(f"{path}: bad {kind} header ({e})") from e
    if w <= 0 or h <= 0 or w * h > 1 << 31:
        raise InputError(f"{path}: bad {kind} header (size {w}x{h})")
    return w, h


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel PFM (``Pf``) as float32 HxW, top row first (PFM stores rows bottom-up).

    Raises:
        InputError: not a PFM, a colour PFM, or truncated.
    """
    p = Path(path)
    data = _read_bytes(p)
    tokens = data.split(maxsplit=4)
    if len(tokens) < 5 or tokens[0] not in (b"Pf", b"PF"):
        raise InputError(f"{p}: not a PFM file")
    if tokens[0] == b"PF":
        raise InputError(f"{p}: colour PFM; a depth or disparity map must have one channel")
    w, h = _header_size(p, tokens, "PFM")
    scale = _header_number(p, tokens[3], float, "PFM")
    if not np.isfinite(scale) or scale == 0:
        raise InputError(f"{p}: bad PFM header (scale {scale})")
    n = w * h * 4
    if len(tokens[4]) < n:
        raise InputError(f"{p}: truncated PFM ({len(tokens[4])} of {n} bytes)")
    arr = np.frombuffer(data[len(data) - n :], dtype="<f4" if scale < 0 else ">f4").reshape(h, w)
    return np.ascontiguousarray(arr[::-1]).astype(np.float32)


def _header_number(path: Path, token: bytes, kind: type, fmt: str):
    """A number of a PFM/PGM header; a token that is not one is an ``InputError``."""
    try:
        return kind(token)
    except ValueError as e:
        raise InputError(f"{path}: bad {fmt} header ({e})") from e


def _read_raw(path: Path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"{path}: not a readable depth/disparity image")
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a single-channel depth/disparity image, got {arr.shape[2]} channels")
    return arr


def _read_pgm_little_endian(path: Path) -> np.ndarray:
    data = _read_bytes(path)
    tokens = data.split(maxsplit=4)
    if len(tokens) < 5 or tokens[0] != b"P5":
        raise InputError(f"{path}: not a binary PGM (P5) file")
    w, h = _header_size(path, tokens, "PGM")
    maxval = _header_number(path, tokens[3], int, "PGM")
    if not 256 <= maxval <= 65535:  # 1-byte samples (maxval < 256) are no Kinect disparity
        raise InputError(f"{path}: bad PGM header (maxval {maxval}; a 16-bit PGM has 256..65535)")
    n = w * h * 2
    if len(tokens[4]) < n:
        raise InputError(f"{path}: truncated PGM ({len(tokens[4])} of {n} bytes)")
    return np.frombuffer(data[-n:], dtype="<u2").reshape(h, w)


def disparity_to_pseudo_depth(disparity: np.ndarray, valid: np.ndarray,
                              near: float = PSEUDO_NEAR_M, far: float = PSEUDO_FAR_M) -> np.ndarray:
    """Pseudo-depth (m) from disparity: inverse depth affine in disparity, valid range mapped to [near, far].

    The largest valid disparity lands at ``near``, the smallest at ``far``; invalid pixels get 0.
    """
    d = disparity.astype(np.float64)
    if not valid.any():
        return np.zeros_like(d, dtype=np.float32)
    lo, hi = float(d[valid].min()), float(d[valid].max())
    t = (d - lo) / (hi - lo) if hi > lo else np.ones_like(d)
    inv = 1.0 / far + t * (1.0 / near - 1.0 / far)
    return np.where(valid, 1.0 / inv, 0.0).astype(np.float32)


def _image_rgb(scene: RGBDScene) -> np.ndarray:
    img, _ = read_image(scene.rgb)  # (H, W, 3)
    return img.transpose(2, 0, 1)  # (3, H, W)


def _middlebury(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    disp = _read_raw(scene.depth).astype(np.float32)
    return _image_rgb(scene), disparity_to_pseudo_depth(disp, disp > 0), {"pseudo_depth": True,
                                                                          "units": "pseudo-metres"}


def _hci4d(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    disp = read_pfm(scene.depth)
    return _image_rgb(scene), disparity_to_pseudo_depth(disp, np.isfinite(disp)), {"pseudo_depth": True,
                                                                                    "units": "pseudo-metres"}


def _nyu_raw(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    raw = _read_pgm_little_endian(scene.depth).astype(np.float64)
    ok = raw < 1092.5 - 1e-3  # Kinect counts at or beyond 1092.5 have no depth (2047 = no reading)
    return _image_rgb(scene), np.where(ok, 351.3 / np.where(ok, 1092.5 - raw, 1.0), 0.0).astype(np.float32), {}


def _sun(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    v = _read_raw(scene.depth).astype(np.uint16)
    v = (v >> 3) | (v << 13)  # uint16 arithmetic keeps the low 16 bits
    return _image_rgb(scene), v.astype(np.float32) / 1000.0, {}


def _tum(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    return _image_rgb(scene), _read_raw(scene.depth).astype(np.float32) / 5000.0, {}


def _folder(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    p = scene.depth
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            d = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{p}: not a readable .npy depth map ({e})") from e
        d = np.squeeze(d)
        if d.ndim != 2:
            raise InputError(f"{p}: expected an HxW depth map, got shape {d.shape}")
        return _image_rgb(scene), d.astype(np.float32), {}
    if suffix == ".pfm":
        return _image_rgb(scene), read_pfm(p), {}
    raw = _read_raw(p)
    if raw.dtype != np.uint16:
        raise InputError(f"{p}: depth images must be 16-bit (value / {scene.depth_scale:g} = metres), got {raw.dtype}")
    return _image_rgb(scene), raw.astype(np.float32) / scene.depth_scale, {"depth_scale": scene.depth_scale}


def _nyu_mat(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    import h5py

    with h5py.File(scene.depth, "r") as f:
        rgb = np.asarray(f["images"][scene.index]).transpose(0, 2, 1)  # (3, W, H) column-major -> (3, H, W)
        depth = np.asarray(f["depths"][scene.index], dtype=np.float32).T  # (W, H) -> (H, W) metres
    return rgb.astype(np.float32) / 255.0, depth, {"index": scene.index}


# RGBDScene.kind -> reader returning (sRGB (3, H, W) float32, depth (H, W) metres, metadata)
_READERS: dict[str, Callable[[RGBDScene], tuple[np.ndarray, np.ndarray, dict]]] = {
    "folder": _folder, "middlebury": _middlebury, "hci4d": _hci4d, "nyu-raw": _nyu_raw, "sun": _sun, "tum": _tum,
    "nyu-mat": _nyu_mat,
}


def load_rgbd(scene: RGBDScene) -> RGBDSample:
    """Decode a scene into sRGB (3, H, W) and metric depth (1, H, W) (0 = invalid; NaN/inf/negative become 0).

    Raises:
        InputError: unreadable files, or depth and rgb of different sizes.
    """
    meta = {"kind": scene.kind, "rgb": str(scene.rgb), "depth": str(scene.depth)}
    if scene.intrinsics is not None:
        meta["intrinsics"] = list(scene.intrinsics)
    rgb, depth, extra = _READERS[scene.kind](scene)
    meta.update(extra)
    if depth.shape != rgb.shape[1:]:
        raise InputError(f"{scene.name}: depth is {depth.shape[1]}x{depth.shape[0]} but rgb is "
                         f"{rgb.shape[2]}x{rgb.shape[1]} ({scene.depth.name}, {scene.rgb.name})")
    depth = np.where(valid_depth(depth), depth, 0.0).astype(np.float32)
    return RGBDSample(scene.name, torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)),
                      torch.from_numpy(depth)[None], meta)
