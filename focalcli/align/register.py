"""Register the frames of a raw focal stack to one reference frame (focus breathing, handheld shake, exposure drift).

How it works:

* Every frame is decoded once, converted to gray and downscaled to a working copy (long side <= ``max_size``),
  so a stack of 24 MP frames never sits in memory at full resolution. Frames are visited outward from the
  reference, and only the current frame and its template are held at once.
* Neighbours are registered to each other (their defocus is similar) and the transforms are chained to the
  reference. Each pair is registered coarse to fine (``align.ecc``: OpenCV's ``findTransformECC`` on an image
  pyramid, started from a phase-correlation shift and the previous pair's breathing). The chained estimate is then
  refined once more directly against the reference at the finest level, so that the errors of the chain do not
  add up.
* The representation is the standardised gray image: ECC's correlation is already invariant to gain and offset,
  and the low and middle frequencies that defocus leaves alone are what frames share (``ecc.representation``).
* A per-channel gain maps each frame's exposure to the reference's (``align.photometric``; why a gain and not an
  affine fit is explained there).

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

from focalcli.align import photometric
from focalcli.align.ecc import EccFailed, pyramid, refine_coarse_to_fine, register_pair, representation, score
from focalcli.align.geometry import magnification, resize_map
from focalcli.errors import InputError
from focalcli.focus.measures import to_gray
from focalcli.io.images import to_float
from focalcli.io.stack import FrameSource, keep_frames

__all__ = [
    "MODELS", "AlignConfig", "FrameReader", "FrameTransform", "Registration", "register_stack", "resolve_reference",
]

MODELS = ("translation", "similarity", "affine", "homography")  # the motion models align.ecc estimates
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


# ---------------------------------------------------------------------------------------------------- frames


class FrameReader:
    """Frames of any ``FrameSource`` as HxWx3 float32 RGB in [0, 1], by index.

    With ``cache_bytes`` > 0, a streamed source is read through ``keep_frames`` (up to that many bytes of decoded
    frames kept), so that registering and then warping a small stack decodes each frame once; stacks in memory are
    never copied.
    """

    def __init__(self, stack: FrameSource, cache_bytes: int = 0):
        self.stack = keep_frames(stack, cache_bytes) if cache_bytes > 0 else stack
        self.size = stack.size
        self.names = list(stack.names)

    def __len__(self) -> int:
        return len(self.names)

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` as HxWx3 float32 RGB in [0, 1].

        Raises:
            InputError: the frame cannot be read, or its size differs from the stack's.
        """
        return to_float(self.stack.frame(i, native=True))


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
    return _Work(pyramid=pyramid(representation(to_gray(small))), thumb=photometric.thumbnail(image, thumb_scale))


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
    thumb_scale = photometric.THUMB_SIDE / max(size)

    results: dict[int, FrameTransform] = {}
    lock = threading.Lock()

    def tick(i: int, ft: FrameTransform) -> None:
        with lock:
            results[i] = ft
            if progress is not None:
                progress(len(results), n)

    ref_work = _prepare(frames.read(ref), work_scale, thumb_scale)
    tick(ref, FrameTransform(name=frames.names[ref], matrix=np.eye(3)))
    to_work = resize_map(size, ref_work.pyramid[0].shape)  # full-size <-> working and thumbnail coordinates
    from_work = np.linalg.inv(to_work)
    to_thumb = resize_map(size, ref_work.thumb.shape)

    ecc_options = {"iterations": config.iterations, "epsilon": config.epsilon}

    def chain(direction: int) -> None:
        template, t_matrix = ref_work, np.eye(3)  # last good frame and its (working-res) frame->ref map
        scale = 1.0  # breathing of the last pair, the expected breathing of the next one
        for i in range(ref + direction, n if direction > 0 else -1, direction):
            work = _prepare(frames.read(i), work_scale, thumb_scale)
            refine = config.refine and template is not ref_work
            try:
                # with a refinement against the reference to follow, the pair stops one level above the finest
                finest = config.finest_level
                pair = register_pair(template.pyramid, work.pyramid, config.model, scale=scale,
                                     last_level=max(finest, 1) if refine else finest, **ecc_options)
                h_work = t_matrix @ np.linalg.inv(pair)  # frame -> reference, working coordinates
                if refine:
                    direct = refine_coarse_to_fine(ref_work.pyramid, work.pyramid, np.linalg.inv(h_work),
                                                   config.model, first_level=finest, last_level=finest, **ecc_options)
                    h_work = np.linalg.inv(direct)
                    pair = np.linalg.inv(h_work) @ t_matrix  # the final estimate, as a template -> frame map
                quality = score(template.pyramid[0], work.pyramid[0], pair)
            except EccFailed:
                h_work, quality = None, 0.0
            if h_work is None:
                ft = FrameTransform(name=frames.names[i], matrix=np.eye(3), score=0.0, failure="ECC did not converge")
            elif quality < config.min_score:
                ft = FrameTransform(name=frames.names[i], matrix=np.eye(3), score=quality,
                                    failure=f"score {quality:.2f} < {config.min_score:g}")
            else:
                h = from_work @ h_work @ to_work
                h /= h[2, 2]
                ft = FrameTransform(name=frames.names[i], matrix=h, scale=magnification(h, size), score=quality)
                if config.photometric:
                    h_thumb = to_thumb @ h @ np.linalg.inv(to_thumb)
                    model = "affine" if config.photometric == "affine" else "exposure"
                    ft.gain, ft.offset = photometric.correction(ref_work.thumb, work.thumb, h_thumb, model)
                template, t_matrix = work, h_work
                scale = math.sqrt(abs(np.linalg.det(pair[:2, :2]))) if config.model != "translation" else 1.0
            tick(i, ft)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(chain, d) for d in (1, -1)]:
            f.result()  # re-raises an unreadable frame's InputError
    return Registration(reference=ref, frames=[results[i] for i in range(n)], size=size, model=config.model)
