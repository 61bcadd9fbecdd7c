"""Coarse-to-fine ECC registration of two frames (OpenCV's ``findTransformECC``) on image pyramids.

Each pair is registered from the coarsest pyramid level down, started from a phase-correlation shift (robust to
handheld shifts of many pixels) and the expected focus breathing. The ``similarity`` model (scale + rotation +
translation) is estimated as an affine ECC warp projected onto the closest similarity (``geometry.to_similarity``),
because OpenCV's ECC has no 4-parameter model.

Warps are 3x3 maps from template pixel coordinates to moving-image pixel coordinates at the finest level.
"""

from __future__ import annotations

import cv2
import numpy as np

from focalcli.align.geometry import resize_map, to_similarity

__all__ = ["MIN_LEVEL_SIDE", "EccFailed", "ecc", "pyramid", "refine_coarse_to_fine", "register_pair",
           "representation", "score"]

_ECC_MOTION = {
    "translation": cv2.MOTION_TRANSLATION,
    "similarity": cv2.MOTION_AFFINE,  # projected onto the closest similarity after each level
    "affine": cv2.MOTION_AFFINE,
    "homography": cv2.MOTION_HOMOGRAPHY,
}
MIN_LEVEL_SIDE = 80  # the coarsest pyramid level keeps at least this many pixels on its short side: fewer leave ECC
# too little structure to converge from a shift of a few pixels
ECC_BLUR = 1  # findTransformECC's Gaussian pre-filter size: 1 = none (the pyramid already low-passes, and extra blur
# would blunt the detail in-focus frames share with their neighbours)
PEAK_RESPONSE = 0.02  # a phase-correlation peak above this is a clear shift to start from (noise peaks stay below)
MIN_OVERLAP = 0.1  # a warp whose overlap with the template is below this share of it scores 0 (too little to judge)
STD_FLOOR = 1e-6  # a flat image is standardised by this instead of its zero spread


class EccFailed(Exception):
    """ECC did not converge for one frame pair (caught by the callers, reported per frame)."""


def representation(gray: np.ndarray) -> np.ndarray:
    """Gray, standardised (zero mean, unit variance).

    The whole band is kept on purpose: defocus removes high frequencies first, so the low and middle frequencies are
    what neighbouring frames share most. ECC's correlation is itself invariant to gain and offset. (Measured on
    ``python -m focalcli.bench align``: band-passed, locally contrast-normalised and gradient-magnitude images all
    gave 1.6-2.7x larger corner errors and more ECC failures than plain gray.)

    Shape:
        ``(H, W)`` float32 -> ``(H, W)`` float32.
    """
    mean, std = cv2.meanStdDev(gray)
    return ((gray - float(mean[0, 0])) / max(float(std[0, 0]), STD_FLOOR)).astype(np.float32)


def pyramid(image: np.ndarray) -> list[np.ndarray]:
    """Finest first; each level halves the previous one (``cv2.resize`` area averaging) while the short side stays
    at least ``MIN_LEVEL_SIDE``."""
    levels = [image]
    while min(levels[-1].shape) // 2 >= MIN_LEVEL_SIDE:
        h, w = levels[-1].shape
        levels.append(cv2.resize(levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    return levels


def ecc(template: np.ndarray, moving: np.ndarray, warp: np.ndarray, model: str, iterations: int,
        epsilon: float) -> np.ndarray:
    """One ECC run: refines ``warp`` (3x3, template coords -> moving coords) for ``model``.

    Raises:
        EccFailed: ECC did not converge, or gave a non-finite warp.
    """
    motion = _ECC_MOTION[model]
    w = warp.astype(np.float32) if motion == cv2.MOTION_HOMOGRAPHY else warp[:2].astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, epsilon)
    try:
        _, w = cv2.findTransformECC(template, moving, w, motion, criteria, None, ECC_BLUR)
    except cv2.error as e:
        raise EccFailed(str(e)) from None
    out = np.eye(3)
    out[: w.shape[0]] = w
    if not np.isfinite(out).all():
        raise EccFailed("non-finite warp")
    if model == "similarity":
        out = to_similarity(out, template.shape)
    return out


def refine_coarse_to_fine(template: list[np.ndarray], moving: list[np.ndarray], warp: np.ndarray, model: str, *,
                          iterations: int, epsilon: float, first_level: int, last_level: int = 0) -> np.ndarray:
    """Refine ``warp`` (finest-level coordinates) on the pyramids from level ``first_level`` down to ``last_level``.

    A coarse level that does not converge is skipped (it can be too small); the last level must converge.

    Raises:
        EccFailed: ECC did not converge at ``last_level``.
    """
    top = min(first_level, len(template) - 1, len(moving) - 1)
    to_top = np.eye(3)
    for lv in range(top):
        to_top = resize_map(template[lv].shape, template[lv + 1].shape) @ to_top
    w = to_top @ warp @ np.linalg.inv(to_top)  # finest -> level ``top``
    last = min(last_level, top)
    for lv in range(top, -1, -1):
        if lv >= last:
            try:
                w = ecc(template[lv], moving[lv], w, model, iterations, epsilon)
            except EccFailed:
                if lv == last:
                    raise
                # A coarse level can be too small to converge; the finer levels start from where it stood.
        if lv > 0:
            up = resize_map(template[lv].shape, template[lv - 1].shape)
            w = up @ w @ np.linalg.inv(up)
    return w


def register_pair(template: list[np.ndarray], moving: list[np.ndarray], model: str, *, iterations: int,
                  epsilon: float, scale: float = 1.0, last_level: int = 0) -> np.ndarray:
    """Warp (template coords -> moving coords, finest level) of two neighbouring frames, coarse to fine.

    The coarsest level starts from the expected breathing ``scale`` about the centre and a translation found by
    phase correlation (robust to handheld shifts of many pixels). If ECC fails from there, it is tried once more
    from the plain identity. ECC stops at pyramid level ``last_level`` (a later step refines the finest level).

    Raises:
        EccFailed: ECC did not converge from either start.
    """
    top = min(len(template), len(moving)) - 1
    t, m = template[top], moving[top]
    window = cv2.createHanningWindow((t.shape[1], t.shape[0]), cv2.CV_32F)
    # copies: OpenCV 5.0's phaseCorrelate applies the window to its inputs in place
    (dx, dy), response = cv2.phaseCorrelate(t.copy(), m.copy(), window)
    to_top = np.eye(3)
    for lv in range(top):
        to_top = resize_map(template[lv].shape, template[lv + 1].shape) @ to_top
    cx, cy = (t.shape[1] - 1) / 2, (t.shape[0] - 1) / 2
    start = np.array([[scale, 0.0, (1 - scale) * cx], [0.0, scale, (1 - scale) * cy], [0.0, 0.0, 1.0]])
    if response > PEAK_RESPONSE:
        start[:2, 2] += (dx, dy)
    start = np.linalg.inv(to_top) @ start @ to_top  # level ``top`` -> finest coordinates
    options = {"iterations": iterations, "epsilon": epsilon, "first_level": top, "last_level": last_level}
    try:
        return refine_coarse_to_fine(template, moving, start, model, **options)
    except EccFailed:
        return refine_coarse_to_fine(template, moving, np.eye(3), model, **options)


def score(template: np.ndarray, moving: np.ndarray, warp: np.ndarray) -> float:
    """Correlation coefficient (ECC) of the template and the moving image warped onto it, over the pixels the warp
    covers; 0 when it covers less than ``MIN_OVERLAP`` of the template."""
    h, w = template.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(moving, warp, (w, h), flags=flags)
    mask = cv2.warpPerspective(np.ones_like(moving, np.uint8), warp, (w, h),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    if mask.sum() < MIN_OVERLAP * mask.size:
        return 0.0
    return float(cv2.computeECC(template, warped, mask))
