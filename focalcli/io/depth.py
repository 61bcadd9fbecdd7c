"""Depth maps on disk.

- ``.npy``: float32, the depth values as they are (metres, or frame-index units when focus distances are unknown).
- ``.png``: 16-bit unsigned, value = round(depth * 1000) (millimetres for metric depth), 0 = invalid.
- ``.tif``/``.tiff``: float32, the depth values as they are; 0 = invalid.
- previews: 8-bit RGB, turbo colour map, near = warm, invalid = black.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from focalcli.errors import InputError
from focalcli.io.atomic import atomic_path
from focalcli.io.images import imwrite

__all__ = ["DEPTH_SUFFIXES", "colorize_depth", "read_depth", "write_depth", "write_preview"]

DEPTH_SUFFIXES = (".npy", ".png", ".tif", ".tiff")
PNG_SCALE = 1000.0  # png value per depth unit (millimetres per metre)


def write_depth(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write an HxW depth map atomically in the format given by the extension (see module docstring).

    Non-finite and non-positive values are written as 0 (invalid).
    """
    p = Path(path)
    d = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)
    suffix = p.suffix.lower()
    with atomic_path(p) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, d)
        elif suffix == ".png":
            imwrite(tmp, np.clip(np.rint(d * PNG_SCALE), 0, 65535).astype(np.uint16), shown=p)
        elif suffix in (".tif", ".tiff"):
            imwrite(tmp, d, shown=p)
        else:
            raise ValueError(f"unknown depth format {suffix}")


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a depth map written by ``write_depth`` (png is divided by 1000). Returns HxW float32, 0 = invalid.

    Raises:
        InputError: unreadable file or unknown format.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            d = np.load(p, allow_pickle=False)
        elif suffix in (".png", ".tif", ".tiff"):
            d = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            if d is None:
                raise InputError(f"{p}: not a readable depth image")
            d = d.astype(np.float32) / PNG_SCALE if suffix == ".png" else d
        else:
            raise InputError(f"{p}: unknown depth format {suffix!r}; use one of {', '.join(DEPTH_SUFFIXES)}")
    except (OSError, ValueError) as e:
        raise InputError(f"{p}: cannot read depth ({e})") from e
    if d.ndim != 2:
        raise InputError(f"{p}: expected a single-channel depth map, got shape {d.shape}")
    return np.nan_to_num(d.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def colorize_depth(depth: np.ndarray, confidence: np.ndarray | None = None) -> np.ndarray:
    """Turbo colour map of a depth map as HxWx3 uint8 RGB.

    Near is red, far is blue, invalid is black; with ``confidence`` (HxW in [0, 1]) pixels with little focus
    evidence fade to dark grey, so the preview shows what was measured rather than noise in textureless regions.
    """
    valid = np.isfinite(depth) & (depth > 0)
    out = np.zeros((*depth.shape, 3), np.uint8)
    if not valid.any():
        return out
    w = valid if confidence is None else valid & (confidence > 0.3)
    lo, hi = np.percentile(depth[w] if w.sum() > 100 else depth[valid], [1, 99])
    t = np.clip((hi - np.where(valid, depth, hi)) / max(hi - lo, 1e-12), 0, 1)  # 1 = near
    rgb = cv2.cvtColor(cv2.applyColorMap((t * 255).astype(np.uint8), cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    if confidence is not None:
        alpha = np.clip((confidence - 0.2) / 0.3, 0, 1)[..., None]
        rgb = (alpha * rgb + (1 - alpha) * 40).astype(np.uint8)
    out[valid] = rgb[valid]
    return out


def write_preview(path: str | os.PathLike, depth: np.ndarray, confidence: np.ndarray | None = None) -> None:
    """Write ``colorize_depth(depth, confidence)`` as an 8-bit image, atomically."""
    with atomic_path(path) as tmp:
        imwrite(tmp, cv2.cvtColor(colorize_depth(depth, confidence), cv2.COLOR_RGB2BGR), shown=path)
