"""Register the frames of a raw focal stack to one reference frame (focus breathing, handheld shake, exposure drift).

How it works:

* Every frame is decoded once, converted to gray and downscaled to a working copy (long side <= ``max_size``),
  so a stack of 24 MP frames never sits in memory at full resolution. Frames are visited outward from the
  reference, and only the current frame and its template are held at once.
* Neighbours are registered to each other (their defocus is similar) and the transforms are chained to the
  reference. Each pair is registered coarse to fine on an image pyramid with OpenCV's ``findTransformECC``,
  started from a phase-correlation shift (robust to handheld shifts of many pixels) and the previous pair's
  breathing. The chained estimate is then refined once more directly against the reference at the finest level,
  so that the errors of the chain do not add up.
* The representation is the standardised gray image: ECC's correlation is already invariant to gain and offset,
  and the low and middle frequencies that defocus leaves alone are what frames share (see ``_representation``).
* The ``similarity`` model (scale + rotation + translation) is estimated as an affine ECC warp projected onto the
  closest similarity, because OpenCV's ECC has no 4-parameter model.
* A per-channel gain maps each frame's exposure to the reference's: the ratio of the channel means over the
  overlap of low-passed thumbnails. Means are what defocus leaves alone (blur moves light, it does not add or remove
  it), and an exposure change is a gain in sRGB too ((k L)^(1/2.2) = k^(1/2.2) L^(1/2.2)). A fit of gain and offset
  (``photometric="affine"``: the ratio of spreads) would also "correct" the contrast that defocus takes away: it
  measured gains of 1.2 on the defocused ends of a small synthetic stack, which inflates their focus measure and pulls
  depth toward them.

Coordinates are OpenCV pixel coordinates (pixel centres at integers). A frame's ``matrix`` maps pixel coordinates of
that input frame to pixel coordinates of the reference input frame, at full resolution.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from focalcli.errors import InputError
from focalcli.focus.measures import to_gray
from focalcli.io.images import to_float
from focalcli.io.stack import FrameSource

__all__ = [
    "MODELS", "AlignConfig", "FrameReader", "FrameTransform", "Registration", "register_stack", "resolve_reference",
]

MODELS = ("translation", "similarity", "affine", "homography")
_ECC_MOTION = {
    "translation": cv2.MOTION_TRANSLATION,
    "similarity": cv2.MOTION_AFFINE,  # projected onto the closest similarity after each level
    "affine": cv2.MOTION_AFFINE,
    "homography": cv2.MOTION_HOMOGRAPHY,
}
_MIN_LEVEL_SIDE = 80  # the coarsest pyramid level keeps at least this many pixels on its short side
_THUMB_SIDE = 96  # long side of the thumbnails used for the photometric fit
_GAUSS = 1
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class AlignConfig:
    """Options of ``register_stack``."""

    model: str = "similarity"  # translation, similarity, affine or homography
    reference: int | None = None  # index of the reference frame; None = the middle frame
    max_size: int = 1536  # long side (px) of the working copies the transforms are estimated on
    min_score: float = 0.4  # a frame whose alignment score is below this fails
    iterations: int = 50  # ECC iterations per pyramid level (at most)
    epsilon: float = 1e-4  # ECC stops when the correlation improves less than this
    refine: bool = True  # refine each chained estimate directly against the reference
    finest_level: int = 1  # ECC stops at this pyramid level (0 = the working copy): 1 takes ~0.6x the CPU for a bit
    # more corner error (python -m focalcli.bench align, mean: 0.033 -> 0.041 px at 640x480, 0.097 -> 0.102 at 1080p)
    photometric: bool | str = "exposure"  # colour correction to the reference: "exposure" (per-channel gain from the
    # means; True is the same), "affine" (gain and offset from the spreads: biased by defocus) or False (none)

    def __post_init__(self):
        if self.model not in MODELS:
            raise InputError(f"unknown motion model {self.model!r}; use one of {', '.join(MODELS)}")
        if self.max_size < 64:
            raise InputError(f"max_size must be at least 64 px, got {self.max_size}")
        if self.finest_level < 0:
            raise InputError(f"finest_level must be >= 0, got {self.finest_level}")
        if self.photometric not in (True, False, "exposure", "affine"):
            raise InputError(f"photometric must be 'exposure', 'affine' or False, got {self.photometric!r}")


@dataclass
class FrameTransform:
    """The registration of one frame.

    Attributes:
        name: file name of the frame.
        matrix: 3x3 homography, input-frame pixel coordinates -> reference-frame pixel coordinates (full size).
        scale: estimated magnification of the frame relative to the reference (1.02: the frame shows the scene
            2 % larger), from the Jacobian of ``matrix`` at the image centre.
        score: alignment quality in [-1, 1]: correlation of the aligned representation with its template.
        gain: per-channel (RGB) gain of the photometric correction, ``reference ~ gain * frame + offset``.
        offset: per-channel offset of the photometric correction.
        failure: why registration failed (ECC did not converge, or the score is below the threshold); None if ok.
    """

    name: str
    matrix: np.ndarray
    scale: float = 1.0
    score: float = 1.0
    gain: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "matrix": [[round(float(v), 9) for v in row] for row in self.matrix],
            "scale": round(float(self.scale), 7),
            "score": round(float(self.score), 5),
            "gain": [round(float(v), 5) for v in self.gain],
            "offset": [round(float(v), 5) for v in self.offset],
        }


@dataclass
class Registration:
    """Transforms of every frame of a stack (input-frame order) to the reference frame."""

    reference: int
    frames: list[FrameTransform]
    size: tuple[int, int]  # (H, W) of the input frames
    model: str = "similarity"

    @property
    def bad(self) -> list[str]:
        """Names of the frames that could not be registered."""
        return [f.name for f in self.frames if not f.ok]

    def to_json(self) -> dict:
        """The ``transforms.json`` contract: ``{"reference": INDEX, "frames": [{"name", "matrix", ...}]}``."""
        return {
            "reference": self.reference,
            "model": self.model,
            "width": self.size[1],
            "height": self.size[0],
            "frames": [f.to_json() for f in self.frames],
        }


def resolve_reference(reference: int | str | None, n: int) -> int:
    """The reference index: None or ``"middle"`` give ``(n - 1) // 2``; negative indices count from the end.

    Raises:
        InputError: not an integer or out of range.
    """
    if reference is None or reference == "middle":
        return (n - 1) // 2
    try:
        i = int(reference)
    except (TypeError, ValueError):
        raise InputError(f"reference must be 'middle' or a frame index, got {reference!r}") from None
    if not -n <= i < n:
        raise InputError(f"reference index {i} is out of range for a stack of {n} frames")
    return i % n


# ---------------------------------------------------------------------------------------------------- helpers


def _resize_map(src: tuple[int, ...], dst: tuple[int, ...]) -> np.ndarray:
    """3x3 map from pixel coordinates of an image of shape ``src`` to those of its resized copy of shape ``dst``.

    Matches ``cv2.resize``: per axis, ``x_dst = (x_src + 0.5) * f - 0.5`` with ``f = dst / src``.
    """
    fx, fy = dst[1] / src[1], dst[0] / src[0]
    return np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])


def _to_similarity(w: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Closest similarity to an affine 3x3 warp (least squares over the image, so the centre maps the same)."""
    a, b, c, d = w[0, 0], w[0, 1], w[1, 0], w[1, 1]
    p, q = 0.5 * (a + d), 0.5 * (c - b)
    s = np.array([[p, -q, 0.0], [q, p, 0.0], [0.0, 0.0, 1.0]])
    centre = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2, 1.0])
    s[:2, 2] = (w @ centre)[:2] - (s @ centre)[:2]
    return s


def _magnification(m: np.ndarray, size: tuple[int, int]) -> float:
    """How much larger a frame shows the scene than the reference does, from its frame -> reference map ``m``.

    ``1 / sqrt(det)`` of the Jacobian of ``m`` at the image centre (1 = same scale; 1.02 = 2 % focus breathing).
    """
    cx, cy = (size[1] - 1) / 2, (size[0] - 1) / 2
    den = m[2, 0] * cx + m[2, 1] * cy + m[2, 2]
    jac = (m[:2, :2] - np.outer((m[:2] @ [cx, cy, 1.0]) / den, m[2, :2])) / den
    return float(1.0 / math.sqrt(abs(np.linalg.det(jac))))


def _representation(gray: np.ndarray) -> np.ndarray:
    """Gray, standardised (zero mean, unit variance).

    The whole band is kept on purpose: defocus removes high frequencies first, so the low and middle frequencies are
    what neighbouring frames share most. ECC's correlation is itself invariant to gain and offset. (Measured on
    ``python -m focalcli.bench align``: band-passed, locally contrast-normalised and gradient-magnitude images all
    gave 1.6-2.7x larger corner errors and more ECC failures than plain gray.)

    Shape:
        ``(H, W)`` float32 -> ``(H, W)`` float32.
    """
    mean, std = cv2.meanStdDev(gray)
    return ((gray - float(mean[0, 0])) / max(float(std[0, 0]), 1e-6)).astype(np.float32)


def _pyramid(image: np.ndarray) -> list[np.ndarray]:
    """Finest first; each level halves the previous one (``cv2.resize`` area averaging)."""
    levels = [image]
    while min(levels[-1].shape) // 2 >= _MIN_LEVEL_SIDE:
        h, w = levels[-1].shape
        levels.append(cv2.resize(levels[-1], (w // 2, h // 2), interpolation=cv2.INTER_AREA))
    return levels


class _EccFailed(Exception):
    """ECC did not converge for one frame pair (caught inside this module, reported per frame)."""


def _ecc(template: np.ndarray, moving: np.ndarray, warp: np.ndarray, model: str, iterations: int,
         epsilon: float) -> np.ndarray:
    """One ECC run: refines ``warp`` (3x3, template coords -> moving coords)."""
    motion = _ECC_MOTION[model]
    w = warp.astype(np.float32) if motion == cv2.MOTION_HOMOGRAPHY else warp[:2].astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, epsilon)
    try:
        _, w = cv2.findTransformECC(template, moving, w, motion, criteria, None, _GAUSS)
    except cv2.error as e:
        raise _EccFailed(str(e)) from None
    out = np.eye(3)
    out[: w.shape[0]] = w
    if not np.isfinite(out).all():
        raise _EccFailed("non-finite warp")
    if model == "similarity":
        out = _to_similarity(out, template.shape)
    return out


def _warp_coarse_to_fine(template: list[np.ndarray], moving: list[np.ndarray], warp: np.ndarray, model: str,
                         config: AlignConfig, first_level: int, last_level: int = 0) -> np.ndarray:
    """Refine ``warp`` (finest-level coordinates) from pyramid level ``first_level`` down to ``last_level``."""
    top = min(first_level, len(template) - 1, len(moving) - 1)
    to_top = np.eye(3)
    for lv in range(top):
        to_top = _resize_map(template[lv].shape, template[lv + 1].shape) @ to_top
    w = to_top @ warp @ np.linalg.inv(to_top)  # finest -> level ``top``
    last = min(last_level, top)
    for lv in range(top, -1, -1):
        if lv >= last:
            try:
                w = _ecc(template[lv], moving[lv], w, model, config.iterations, config.epsilon)
            except _EccFailed:
                if lv == last:
                    raise
                # A coarse level can be too small to converge; the finer levels start from where it stood.
        if lv > 0:
            up = _resize_map(template[lv].shape, template[lv - 1].shape)
            w = up @ w @ np.linalg.inv(up)
    return w


def _register_pair(template: list[np.ndarray], moving: list[np.ndarray], model: str, config: AlignConfig,
                   scale: float, last_level: int = 0) -> np.ndarray:
    """Warp (template coords -> moving coords, finest level) of two neighbouring frames, coarse to fine.

    The coarsest level starts from the expected breathing ``scale`` about the centre and a translation found by
    phase correlation (robust to handheld shifts of many pixels). If ECC fails from there, it is tried once more
    from the plain identity. ECC stops at pyramid level ``last_level`` (a later step refines the finest level).
    """
    top = min(len(template), len(moving)) - 1
    t, m = template[top], moving[top]
    window = cv2.createHanningWindow((t.shape[1], t.shape[0]), cv2.CV_32F)
    # copies: OpenCV 5.0's phaseCorrelate applies the window to its inputs in place
    (dx, dy), response = cv2.phaseCorrelate(t.copy(), m.copy(), window)
    to_top = np.eye(3)
    for lv in range(top):
        to_top = _resize_map(template[lv].shape, template[lv + 1].shape) @ to_top
    cx, cy = (t.shape[1] - 1) / 2, (t.shape[0] - 1) / 2
    start = np.array([[scale, 0.0, (1 - scale) * cx], [0.0, scale, (1 - scale) * cy], [0.0, 0.0, 1.0]])
    if response > 0.02:  # a clear correlation peak
        start[:2, 2] += (dx, dy)
    start = np.linalg.inv(to_top) @ start @ to_top  # level ``top`` -> finest coordinates
    try:
        return _warp_coarse_to_fine(template, moving, start, model, config, top, last_level)
    except _EccFailed:
        return _warp_coarse_to_fine(template, moving, np.eye(3), model, config, top, last_level)


def _score(template: np.ndarray, moving: np.ndarray, warp: np.ndarray) -> float:
    """Correlation coefficient (ECC) of the template and the moving image warped onto it, over valid pixels."""
    h, w = template.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped = cv2.warpPerspective(moving, warp, (w, h), flags=flags)
    mask = cv2.warpPerspective(np.ones_like(moving, np.uint8), warp, (w, h),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    if mask.sum() < 0.1 * mask.size:
        return 0.0
    return float(cv2.computeECC(template, warped, mask))


def _photometric(ref_thumb: np.ndarray, thumb: np.ndarray, h_thumb: np.ndarray, model: str = "exposure"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset with ``ref ~ gain * frame + offset`` on aligned, low-passed thumbnails.

    ``exposure``: gain = ratio of the means, offset 0 (unbiased by defocus); ``affine``: reduced-major-axis fit.
    """
    h, w = ref_thumb.shape[:2]
    warped = cv2.warpPerspective(thumb, h_thumb, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones(thumb.shape[:2], np.uint8), h_thumb, (w, h), flags=cv2.INTER_NEAREST)
    mask = cv2.erode(mask, np.ones((5, 5), np.uint8)).astype(bool)
    if mask.sum() < 16:
        return np.ones(3, np.float32), np.zeros(3, np.float32)
    a, b = warped[mask].astype(np.float64), ref_thumb[mask].astype(np.float64)  # (P, 3) frame, reference
    if model == "exposure":
        gain = np.clip(b.mean(0) / np.maximum(a.mean(0), 1e-6), 0.5, 2.0)
        return gain.astype(np.float32), np.zeros(3, np.float32)
    # Reduced-major-axis fit (ratio of spreads): symmetric, and not biased low by residual differences.
    gain = np.clip(b.std(0) / np.maximum(a.std(0), 1e-6), 0.5, 2.0)
    offset = b.mean(0) - gain * a.mean(0)
    return gain.astype(np.float32), offset.astype(np.float32)


# ---------------------------------------------------------------------------------------------------- frames


class FrameReader:
    """Frames of any ``FrameSource`` as HxWx3 float32 RGB in [0, 1], by index.

    With ``cache_bytes`` > 0, the frames of a streamed source (decoded from disk when read) are kept in their native
    8/16-bit form while the whole stack fits, so that registering and then warping a small stack decodes each frame
    once; larger stacks stay streamed, and stacks in memory are never copied.
    """

    def __init__(self, stack: FrameSource, cache_bytes: int = 0):
        self.stack = stack
        self.size = stack.size
        self.names = list(stack.names)
        per_frame = self.size[0] * self.size[1] * 3 * (2 if stack.bit_depth > 8 else 1)
        fits = stack.streamed and per_frame * len(self.names) <= cache_bytes
        self._cache: dict[int, np.ndarray] | None = {} if fits else None

    def __len__(self) -> int:
        return len(self.names)

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` as HxWx3 float32 RGB in [0, 1].

        Raises:
            InputError: the frame cannot be read, or its size differs from the stack's.
        """
        img = self._cache.get(i) if self._cache is not None else None
        if img is None:
            img = self.stack.frame(i, native=True)
            if self._cache is not None:
                self._cache[i] = img
        return to_float(img)


@dataclass
class _Work:
    """The downscaled copies of one frame that registration needs."""

    pyramid: list[np.ndarray]  # representation, finest (working size) first
    thumb: np.ndarray  # low-passed RGB thumbnail for the photometric fit


def _prepare(image: np.ndarray, work_scale: float, thumb_scale: float) -> _Work:
    h, w = image.shape[:2]
    if work_scale < 1.0:
        small = cv2.resize(image, (round(w * work_scale), round(h * work_scale)), interpolation=cv2.INTER_AREA)
    else:
        small = image
    thumb = cv2.resize(image, (max(8, round(w * thumb_scale)), max(8, round(h * thumb_scale))),
                       interpolation=cv2.INTER_AREA)
    thumb = cv2.GaussianBlur(thumb, (0, 0), 1.0)
    return _Work(pyramid=_pyramid(_representation(to_gray(small))), thumb=thumb)


# ---------------------------------------------------------------------------------------------------- main


def register_stack(stack: FrameSource, config: AlignConfig | None = None, *,
                   progress: Progress | None = None, reader: FrameReader | None = None) -> Registration:
    """Estimate the transform of every frame to the reference frame.

    Frames that cannot be registered come back with ``ok=False`` (see ``Registration.bad``); the chain then goes
    on from the last good frame. This function never raises for a bad frame: the caller decides. The frames on
    either side of the reference form two independent chains, registered in two threads (OpenCV releases the GIL).

    Args:
        stack: a ``StackFolder`` (frames decoded one at a time), a ``FocalStack`` or any ``FrameSource``.
        config: options; defaults to ``AlignConfig()``.
        progress: called with ``(frames done, total)``.
        reader: the ``FrameReader`` of ``stack`` to use (e.g. one that caches frames for warping them later).

    Returns:
        A ``Registration`` with one ``FrameTransform`` per frame, in input-frame order.

    Raises:
        InputError: an unknown model, a reference out of range, or an unreadable frame.
    """
    config = config or AlignConfig()
    frames = reader or FrameReader(stack)
    n, size = len(frames), frames.size
    ref = resolve_reference(config.reference, n)
    work_scale = min(1.0, config.max_size / max(size))
    thumb_scale = _THUMB_SIDE / max(size)

    results: dict[int, FrameTransform] = {}
    lock = threading.Lock()

    def tick(i: int, ft: FrameTransform) -> None:
        with lock:
            results[i] = ft
            if progress is not None:
                progress(len(results), n)

    ref_work = _prepare(frames.read(ref), work_scale, thumb_scale)
    tick(ref, FrameTransform(name=frames.names[ref], matrix=np.eye(3)))
    to_work = _resize_map(size, ref_work.pyramid[0].shape)  # full-size <-> working and thumbnail coordinates
    from_work = np.linalg.inv(to_work)
    to_thumb = _resize_map(size, ref_work.thumb.shape)

    def chain(direction: int) -> None:
        template, t_matrix = ref_work, np.eye(3)  # last good frame and its (working-res) frame->ref map
        scale = 1.0  # breathing of the last pair, the expected breathing of the next one
        for i in range(ref + direction, n if direction > 0 else -1, direction):
            work = _prepare(frames.read(i), work_scale, thumb_scale)
            refine = config.refine and template is not ref_work
            try:
                # with a refinement against the reference to follow, the pair stops one level above the finest
                finest = config.finest_level
                pair = _register_pair(template.pyramid, work.pyramid, config.model, config, scale,
                                      last_level=max(finest, 1) if refine else finest)
                h_work = t_matrix @ np.linalg.inv(pair)  # frame -> reference, working coordinates
                if refine:
                    direct = _warp_coarse_to_fine(ref_work.pyramid, work.pyramid, np.linalg.inv(h_work),
                                                  config.model, config, finest, finest)
                    h_work = np.linalg.inv(direct)
                    pair = np.linalg.inv(h_work) @ t_matrix  # the final estimate, as a template -> frame map
                score = _score(template.pyramid[0], work.pyramid[0], pair)
            except _EccFailed:
                h_work, score = None, 0.0
            if h_work is None:
                ft = FrameTransform(name=frames.names[i], matrix=np.eye(3), score=0.0, failure="ECC did not converge")
            elif score < config.min_score:
                ft = FrameTransform(name=frames.names[i], matrix=np.eye(3), score=score,
                                    failure=f"score {score:.2f} < {config.min_score:g}")
            else:
                h = from_work @ h_work @ to_work
                h /= h[2, 2]
                ft = FrameTransform(name=frames.names[i], matrix=h, scale=_magnification(h, size), score=score)
                if config.photometric:
                    h_thumb = to_thumb @ h @ np.linalg.inv(to_thumb)
                    model = "affine" if config.photometric == "affine" else "exposure"
                    ft.gain, ft.offset = _photometric(ref_work.thumb, work.thumb, h_thumb, model)
                template, t_matrix = work, h_work
                scale = math.sqrt(abs(np.linalg.det(pair[:2, :2]))) if config.model != "translation" else 1.0
            tick(i, ft)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(chain, d) for d in (1, -1)]:
            f.result()  # re-raises an unreadable frame's InputError
    return Registration(reference=ref, frames=[results[i] for i in range(n)], size=size, model=config.model)
