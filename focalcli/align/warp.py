"""Apply registration transforms to frames: resample into the reference frame, correct colours, crop.

Frames are resampled with bicubic interpolation (bilinear would blur them, and a blurred frame loses its focus
measure to the unwarped reference). Pixels that fall outside an input frame repeat its border (so that filters near
the border see no artificial edge), and ``coverage_mask`` says which output pixels are real: the uncovered ones hold
no data of that frame (``focal predict`` marks their depth invalid). ``valid_box`` gives the rectangle that every
frame covers, which is what ``--crop`` keeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from focalcli.align.register import FrameTransform

__all__ = ["INTERPOLATION", "coverage_mask", "valid_box", "warp_frame", "warp_map"]

INTERPOLATION = cv2.INTER_CUBIC  # resampling of the warped frames


def valid_box(transforms: Sequence[FrameTransform], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The largest axis-aligned box of reference pixels that lies inside every warped frame.

    Conservative for the small rotations of a focal stack: each side of the box is put at the innermost of the two
    warped corners on that side.

    Args:
        transforms: the frames' transforms (input frame -> reference frame pixel coordinates).
        size: ``(H, W)`` of the input frames.

    Returns:
        ``(x, y, width, height)`` in reference-frame pixels; ``(0, 0, W, H)`` when nothing moves.
    """
    h, w = size
    x0, y0, x1, y1 = 0.0, 0.0, float(w - 1), float(h - 1)
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T  # (3, 4)
    for t in transforms:
        p = t.matrix @ corners
        (tlx, trx, brx, blx), (tly, try_, bry, bly) = p[:2] / p[2]
        x0, x1 = max(x0, tlx, blx), min(x1, trx, brx)
        y0, y1 = max(y0, tly, try_), min(y1, bly, bry)
    left, top = math.ceil(x0 - 1e-6), math.ceil(y0 - 1e-6)
    right, bottom = math.floor(x1 + 1e-6), math.floor(y1 + 1e-6)
    return left, top, max(0, right - left + 1), max(0, bottom - top + 1)


def _output_map(transform: FrameTransform, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y = box[:2]
    return np.array([[1.0, 0.0, -x], [0.0, 1.0, -y], [0.0, 0.0, 1.0]]) @ transform.matrix  # input -> output pixels


def coverage_mask(transform: FrameTransform, size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Which pixels of the warped frame (``warp_frame(..., box)``) come from inside the input frame.

    A pixel is covered when its source point lies within the input frame's pixel centres, so that its value is
    interpolated from real pixels rather than repeated from the border.

    Args:
        transform: the frame's registration.
        size: ``(H, W)`` of the input frame.
        box: ``(x, y, width, height)`` of the output in reference-frame pixels.

    Returns:
        bool, True = covered.

    Shape:
        ``(height, width)``.
    """
    h, w = size
    _, _, bw, bh = box
    m = _output_map(transform, box)
    if np.allclose(m, np.eye(3)) and (bh, bw) == (h, w):
        return np.ones((bh, bw), bool)
    ones = np.ones((h, w), np.float32)
    flags, border = cv2.INTER_LINEAR, cv2.BORDER_CONSTANT
    if np.allclose(m[2], [0.0, 0.0, 1.0]):
        inside = cv2.warpAffine(ones, m[:2], (bw, bh), flags=flags, borderMode=border, borderValue=0.0)
    else:
        inside = cv2.warpPerspective(ones, m, (bw, bh), flags=flags, borderMode=border, borderValue=0.0)
    return inside > 0.999  # bilinear weights all on real pixels (1 - 1e-3: float32 rounding)


def warp_map(values: np.ndarray, transform: FrameTransform, box: tuple[int, int, int, int],
             interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Resample a per-pixel map of one input frame (a focus measure, a gray image) into the reference frame's pixel
    grid, restricted to ``box``; 0 where the frame does not reach. No photometric correction.

    Shape:
        ``(H, W)`` float32 -> ``(height, width)`` float32.
    """
    _, _, bw, bh = box
    m = _output_map(transform, box)
    if np.allclose(m, np.eye(3)) and (bh, bw) == values.shape[:2]:
        return values.copy()
    if np.allclose(m[2], [0.0, 0.0, 1.0]):
        return cv2.warpAffine(values, m[:2], (bw, bh), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
    return cv2.warpPerspective(values, m, (bw, bh), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)


def warp_frame(image: np.ndarray, transform: FrameTransform, box: tuple[int, int, int, int],
               photometric: bool = True) -> np.ndarray:
    """Resample one frame into the reference frame's pixel grid, restricted to ``box``.

    Args:
        image: the input frame, float32 RGB in [0, 1].
        transform: its registration.
        box: ``(x, y, width, height)`` of the output in reference-frame pixels (``valid_box`` or the full frame).
        photometric: apply the transform's per-channel gain and offset.

    Returns:
        float32 RGB in [0, 1].

    Shape:
        ``(H, W, 3)`` -> ``(height, width, 3)``.
    """
    _, _, bw, bh = box
    m = _output_map(transform, box)
    flags, border = INTERPOLATION, cv2.BORDER_REPLICATE
    if np.allclose(m, np.eye(3)) and (bh, bw) == image.shape[:2]:
        out = image.copy()
    elif np.allclose(m[2], [0.0, 0.0, 1.0]):
        out = cv2.warpAffine(image, m[:2], (bw, bh), flags=flags, borderMode=border)
    else:
        out = cv2.warpPerspective(image, m, (bw, bh), flags=flags, borderMode=border)
    if photometric and not np.allclose(transform.gain, 1.0):
        out = cv2.multiply(out, (*(float(g) for g in transform.gain.astype(np.float32)), 0.0))  # per channel
    if photometric and np.any(transform.offset):  # the default correction ("exposure") has none
        out = out + transform.offset.astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out)
