"""Depth maps in memory (``DepthResult``: what every depth method returns) and on disk.

- ``.npy``: float32, the depth values as they are (metres, or frame-index units when focus distances are unknown).
- ``.png``: 16-bit unsigned, value = round(depth * 1000) (millimetres for metric depth), 0 = invalid.
- ``.tif``/``.tiff``: float32, the depth values as they are; 0 = invalid.
- previews: 8-bit RGB, a colour map (turbo by default: near = warm), invalid = black, and below the image a colour
  bar labelled with the depth range and its units, so that two previews made with the same ``depth_range`` compare.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from focalcli.errors import InputError
from focalcli.io.atomic import atomic_path
from focalcli.io.images import imwrite

__all__ = ["COLORMAPS", "DEPTH_SUFFIXES", "DepthResult", "colorbar", "colorize_depth", "preview_range", "read_depth",
           "valid_depth", "write_depth", "write_preview"]

DEPTH_SUFFIXES = (".npy", ".png", ".tif", ".tiff")
PNG_SCALE = 1000.0  # png value per depth unit (millimetres per metre)
# name -> OpenCV colour map (None: gray); near depth takes the map's high end (turbo: red, viridis: yellow, gray: white)
COLORMAPS = {"turbo": cv2.COLORMAP_TURBO, "viridis": cv2.COLORMAP_VIRIDIS, "magma": cv2.COLORMAP_MAGMA,
             "inferno": cv2.COLORMAP_INFERNO, "plasma": cv2.COLORMAP_PLASMA, "cividis": cv2.COLORMAP_CIVIDIS,
             "gray": None}
UNIT_LABELS = {"m": "m", "frame_index": "frame", "relative": "relative"}


@dataclass
class DepthResult:
    """Output of a depth-from-focus method.

    Attributes:
        depth: HxW float32; metres when ``units == "m"``, else 1-based frame-index units; NaN where there is no
            estimate (pixels that not every frame of an aligned stack covers).
        confidence: HxW float32 in [0, 1]; how clearly the pixel's own focus curve peaks (0 = no evidence, its
            depth came from the surroundings); None where a method has no such measure.
        units: ``"m"``, ``"frame_index"`` (classic without focus distances) or ``"relative"`` (a learned model
            without focus distances).
        aif: HxWx3 float32 all-in-focus image in [0, 1], when it was asked for.
        info: how the result was made, for the record (JSON-ready): a method's resolved options (the windows and
            fill scale the classic method picked for this image), the alignment, ...
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    units: str
    aif: np.ndarray | None = None
    info: dict = field(default_factory=dict)

    @property
    def metric(self) -> bool:
        return self.units == "m"


def valid_depth(depth):
    """Where a depth map holds a value: finite and > 0 (0 marks invalid pixels, NaN pixels without an estimate).

    ``depth`` is a numpy array or a torch tensor of any shape (on any device); the mask is of the same kind. Written
    as ``0 < depth < inf``, which is the same for floats (NaN compares false) and needs no torch import.
    """
    return (depth > 0) & (depth < math.inf)


def write_depth(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write an HxW depth map atomically in the format given by the extension (see module docstring).

    Non-finite and non-positive values are written as 0 (invalid).
    """
    p = Path(path)
    d = np.where(valid_depth(depth), depth, 0.0).astype(np.float32)
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


def preview_range(depth: np.ndarray, confidence: np.ndarray | None = None) -> tuple[float, float]:
    """The automatic preview range: the 1st and 99th percentiles of the valid depth (confident pixels when there
    are enough of them). ``(0, 1)`` when nothing is valid."""
    valid = valid_depth(depth)
    if not valid.any():
        return 0.0, 1.0
    w = valid if confidence is None else valid & (confidence > 0.3)
    values = depth[w] if w.sum() > 100 else depth[valid]
    ks = [int(q * (values.size - 1)) for q in (0.01, 0.99)]  # partial sort: np.percentile imports numpy.ma (10 ms)
    lo, hi = np.partition(values, ks)[ks]
    return float(lo), float(hi)


def _apply_map(t: np.ndarray, colormap: str) -> np.ndarray:
    """Values in [0, 1] (1 = near) -> RGB uint8 through ``COLORMAPS[colormap]``."""
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colour map {colormap!r}; use one of {', '.join(COLORMAPS)}")
    u8 = np.clip(np.rint(t * 255), 0, 255).astype(np.uint8)
    if COLORMAPS[colormap] is None:
        return np.repeat(u8[..., None], 3, axis=-1)
    return cv2.cvtColor(cv2.applyColorMap(u8, COLORMAPS[colormap]), cv2.COLOR_BGR2RGB)


def colorize_depth(depth: np.ndarray, confidence: np.ndarray | None = None, *, colormap: str = "turbo",
                   depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """A colour map of a depth map as HxWx3 uint8 RGB.

    Near takes the high end of the map (turbo: red), far the low end (turbo: blue); invalid is black. With
    ``confidence`` (HxW in [0, 1]) pixels with little focus evidence fade to dark grey, so the preview shows what
    was measured rather than noise in textureless regions.

    Args:
        depth: HxW depth (0 or non-finite = invalid).
        confidence: optional HxW confidence in [0, 1].
        colormap: a key of ``COLORMAPS``.
        depth_range: ``(near, far)`` in the depth's units, mapped to the two ends of the colour map (values beyond
            are clipped); None = ``preview_range`` (percentiles of this map, so two maps are not comparable).

    Raises:
        ValueError: unknown colour map, or a range with ``near >= far``.
    """
    valid = valid_depth(depth)
    out = np.zeros((*depth.shape, 3), np.uint8)
    if depth_range is not None and not depth_range[0] < depth_range[1]:
        raise ValueError(f"the depth range must be NEAR,FAR with NEAR < FAR, got {depth_range}")
    if not valid.any():
        _apply_map(np.zeros(1), colormap)  # still reject an unknown colour map
        return out
    lo, hi = depth_range if depth_range is not None else preview_range(depth, confidence)
    t = np.clip((hi - np.where(valid, depth, hi)) / max(hi - lo, 1e-12), 0, 1)  # 1 = near
    rgb = _apply_map(t, colormap)
    if confidence is not None:
        alpha = np.clip((confidence - 0.2) / 0.3, 0, 1)[..., None]
        rgb = (alpha * rgb + (1 - alpha) * 40).astype(np.uint8)
    out[valid] = rgb[valid]
    return out


def _label(value: float) -> str:
    return f"{value:.3g}"


def colorbar(width: int, depth_range: tuple[float, float], units: str, *, colormap: str = "turbo") -> np.ndarray:
    """A horizontal colour bar for a preview of ``width`` px: near on the left, far on the right, labelled with the
    range ends and the units (``m``, ``frame`` or ``relative``), and the middle value where there is room.

    Returns:
        uint8 RGB, shape ``(h, width, 3)`` with ``h`` about 1/12 of the width (at least 30 px).
    """
    near, far = depth_range
    h = max(30, round(width / 12))
    bar_h = max(6, h // 3)
    out = np.full((h, width, 3), 255, np.uint8)
    t = np.linspace(1.0, 0.0, width, dtype=np.float32)[None].repeat(bar_h, 0)  # (bar_h, W), 1 = near
    out[:bar_h] = _apply_map(t, colormap)
    unit = UNIT_LABELS.get(units, units)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for scale in np.linspace(max(0.3, (h - bar_h) / 40), 0.25, 6):  # the largest text that fits
        thick = max(1, round(scale * 1.5))
        candidates = ([(f"near {_label(near)} {unit}", 0.0), (_label((near + far) / 2), 0.5),
                       (f"{_label(far)} {unit} far", 1.0)],
                      [(f"{_label(near)} {unit}", 0.0), (f"{_label(far)} {unit}", 1.0)])
        for texts in candidates:
            widths = [cv2.getTextSize(text, font, scale, thick)[0][0] for text, _ in texts]
            if sum(widths) + 12 * len(texts) <= width:
                break
        else:
            continue
        break
    base = bar_h + round((h - bar_h) * 0.75)
    for (text, at), tw in zip(texts, widths, strict=True):
        x = 3 if at == 0.0 else width - tw - 3 if at == 1.0 else (width - tw) // 2
        cv2.putText(out, text, (max(0, x), base), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out


def write_preview(path: str | os.PathLike, depth: np.ndarray, confidence: np.ndarray | None = None, *,
                  colormap: str = "turbo", depth_range: tuple[float, float] | None = None, units: str | None = None
                  ) -> None:
    """Write ``colorize_depth(depth, confidence, ...)`` as an 8-bit image, atomically.

    Args:
        units: the depth's units (``m``, ``frame_index``, ``relative``); when given, a labelled colour bar
            (``colorbar``) is added below the image.
    """
    rgb = colorize_depth(depth, confidence, colormap=colormap, depth_range=depth_range)
    if units is not None:
        rng = depth_range if depth_range is not None else preview_range(depth, confidence)
        rgb = np.concatenate([rgb, colorbar(rgb.shape[1], rng, units, colormap=colormap)], axis=0)
    with atomic_path(path) as tmp:
        imwrite(tmp, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), shown=path)
