"""Colour correction of a registered frame to the reference: per-channel gain (and offset) on small thumbnails.

A per-channel gain maps each frame's exposure to the reference's: the ratio of the channel means over the overlap of
low-passed thumbnails. Means are what defocus leaves alone (blur moves light, it does not add or remove it), and an
exposure change is a gain in sRGB too ((k L)^(1/2.2) = k^(1/2.2) L^(1/2.2)). A fit of gain and offset
(``model="affine"``: the ratio of spreads) would also "correct" the contrast that defocus takes away: it measured
gains of 1.2 on the defocused ends of a small synthetic stack, which inflates their focus measure and pulls depth
toward them.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["GAIN_RANGE", "THUMB_SIDE", "correction", "thumbnail"]

THUMB_SIDE = 96  # long side (px) of the thumbnails: means need few pixels, and small copies forgive misalignment
MIN_THUMB_SIDE = 8  # ... and never fewer than this on either side
THUMB_BLUR = 1.0  # Gaussian sigma (thumbnail px): residual misalignment and fine defocus detail stay out of the fit
EDGE_PX = 5  # the overlap is eroded by this square, so pixels interpolated against the warp's border are left out
MIN_PIXELS = 16  # with fewer overlapping thumbnail pixels the fit is not trusted (no correction)
GAIN_RANGE = (0.5, 2.0)  # gains are clipped to one stop either way: more means a failed fit, not an exposure change
_EPS = 1e-6  # floor of a mean or spread that is divided by


def thumbnail(image: np.ndarray, scale: float) -> np.ndarray:
    """The low-passed thumbnail of an HxWx3 frame at ``scale`` (``THUMB_SIDE / long side``) that ``correction``
    compares."""
    h, w = image.shape[:2]
    size = (max(MIN_THUMB_SIDE, round(w * scale)), max(MIN_THUMB_SIDE, round(h * scale)))
    thumb = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(thumb, (0, 0), THUMB_BLUR)


def correction(ref_thumb: np.ndarray, thumb: np.ndarray, h_thumb: np.ndarray, model: str = "exposure"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset with ``ref ~ gain * frame + offset`` on aligned, low-passed thumbnails.

    Args:
        ref_thumb, thumb: the reference's and the frame's ``thumbnail``.
        h_thumb: 3x3 map from frame-thumbnail to reference-thumbnail pixels.
        model: ``exposure`` (gain = ratio of the means, offset 0: unbiased by defocus) or ``affine``
            (reduced-major-axis fit).

    Returns:
        ``(gain, offset)``, float32 (3,) each; ``(1, 0)`` when the thumbnails overlap too little.
    """
    h, w = ref_thumb.shape[:2]
    warped = cv2.warpPerspective(thumb, h_thumb, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(thumb.shape[:2], np.uint8), h_thumb, (w, h), flags=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((EDGE_PX, EDGE_PX), np.uint8)).astype(bool)
    if mask.sum() < MIN_PIXELS:
        return np.ones(3, np.float32), np.zeros(3, np.float32)
    a, b = warped[mask].astype(np.float64), ref_thumb[mask].astype(np.float64)  # (P, 3) frame, reference
    if model == "exposure":
        gain = np.clip(b.mean(0) / np.maximum(a.mean(0), _EPS), *GAIN_RANGE)
        return gain.astype(np.float32), np.zeros(3, np.float32)
    # Reduced-major-axis fit (ratio of spreads): symmetric, and not biased low by residual differences.
    gain = np.clip(b.std(0) / np.maximum(a.std(0), _EPS), *GAIN_RANGE)
    offset = b.mean(0) - gain * a.mean(0)
    return gain.astype(np.float32), offset.astype(np.float32)
