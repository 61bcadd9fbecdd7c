"""A quick check of whether a stack needs alignment: frame-to-frame scale and shift on small copies.

``check_alignment`` is what ``focal predict`` / ``focal fuse`` run by default (``--align auto``), so it must cost
little next to the prediction itself:

* Only neighbouring pairs of frames are registered: the first two, the two in the middle and the last two (all
  pairs of a stack of up to four frames). JPEG frames are decoded at 1/2, 1/4 or 1/8 of their size by libjpeg's DCT
  scaling (much faster than a full decode), other formats in full, and each is reduced to a gray copy of at most
  ``side`` pixels on its long side. Each pair is registered with the same coarse-to-fine ECC as ``focal align``
  (similarity model, started from a phase-correlation shift) on those copies.
* Why neighbours, not the ends against the middle: defocus moves blurred structures (a blurred occluding edge
  spreads over its background), and between frames of very different focus this apparent motion reaches several
  pixels on an aligned stack (measured on ``python -m focalcli.bench valset``: up to 6.5 px at 640 px between the
  first and the middle frame). Between neighbours the blur differs little.
* Focus breathing is a magnification that changes steadily with focus, so every pair shows a scale change of the
  same sign and a similar size; the apparent motion of defocus does not (on the validation set the three pairs
  disagree in sign). Breathing counts when the pairs agree (same sign, within a factor ``CONSISTENCY`` of each
  other); it is then extrapolated from the mean per-step scale to the end frames against the middle (reference)
  frame, and measured as the displacement of the image corners in full-resolution pixels.
* A shift of the image centre (handheld shake, a moving rail) counts in any pair whose shift exceeds
  ``SHIFT_PX`` full-resolution pixels (defocus shifted the validation stacks' centres by at most 0.43 px).
* Alignment is needed when the breathing or a shift exceeds ``threshold_px`` (and ``SHIFT_PX`` for shifts).
* Both default thresholds are for frames of ``REFERENCE_SIDE`` px and grow with larger frames (``size_factor``):
  the apparent motion of defocus spreads over a fixed share of the frame, so in pixels it grows with the frame.

A stack aligned by construction (synthetic stacks, the output of ``focal align``, telecentric optics) comes out
not needing alignment and is left untouched. A pair that cannot be registered (too little texture, as in frames
focused far from everything; ECC does not converge) is left out and named in the reason, and the others decide
(breathing then needs two pairs that agree); when no pair can be registered the check says so and does not align:
``--align on`` forces it.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

from focalcli.align.ecc import EccFailed, pyramid, register_pair, representation, score
from focalcli.align.geometry import magnification, resize_map
from focalcli.align.register import AlignConfig
from focalcli.focus.measures import to_gray
from focalcli.io.images import to_float
from focalcli.io.stack import FrameSource

__all__ = ["CHECK_SIDE", "CONSISTENCY", "REFERENCE_SIDE", "SHIFT_PX", "THRESHOLD_PX", "AlignCheck", "check_alignment",
           "check_pairs", "corner_displacement", "gray_thumbnail", "size_factor"]

CHECK_SIDE = 256  # px: long side of the copies the check registers
THRESHOLD_PX = 0.5  # align when the extrapolated breathing moves the corners by more than this (full-res px)
SHIFT_PX = 1.0  # ... or when a pair of neighbours is shifted by more than this (and than threshold_px)
REFERENCE_SIDE = 640  # px: the long side of the frames the two thresholds above are for (``size_factor``)
CONSISTENCY = 3.0  # per-step scale changes within this factor of each other (and of one sign) are breathing
MIN_SCORE = 0.3  # below this correlation a pair's estimate is not trusted
_JPEG = (".jpg", ".jpeg")


@dataclass
class AlignCheck:
    """The outcome of ``check_alignment``.

    Attributes:
        needed: whether the stack should be aligned.
        misalignment_px: what the decision compared with the thresholds: the larger of the extrapolated breathing
            (corner displacement of the end frames against the middle frame; 0 when the pairs disagree) and the
            largest shift of a pair, full-resolution pixels, over the pairs that could be registered; None when
            none could.
        breathing_px: the extrapolated breathing (None when the pairs disagree, or fewer than two were registered).
        threshold_px: the threshold.
        shift_threshold_px: the threshold of a shift.
        reason: one line on how the decision was made.
        side: long side (px) of the registered copies.
        pairs: per pair of neighbours: ``frames`` (names), ``matrix`` (3x3, second frame -> first frame pixels at
            full resolution), ``scale`` (per-step magnification), ``shift_px`` (of the image centre),
            ``displacement_px`` (largest corner displacement) and ``score``; or ``failure``.
        seconds: time the check took (not part of ``to_json``).
    """

    needed: bool
    misalignment_px: float | None
    breathing_px: float | None
    threshold_px: float
    shift_threshold_px: float
    reason: str
    side: int
    pairs: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        """Everything but ``seconds`` (so that the same stack always gives the same record)."""
        return {
            "needed": self.needed,
            "misalignment_px": None if self.misalignment_px is None else round(self.misalignment_px, 3),
            "breathing_px": None if self.breathing_px is None else round(self.breathing_px, 3),
            "threshold_px": self.threshold_px,
            "shift_threshold_px": self.shift_threshold_px,
            "reason": self.reason,
            "side": self.side,
            "pairs": self.pairs,
        }


def corner_displacement(matrix: np.ndarray, size: tuple[int, int]) -> float:
    """Largest distance (px) that ``matrix`` (3x3) moves one of the four corners of an ``(H, W)`` image."""
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T  # (3, 4)
    p = matrix @ corners
    p = p[:2] / p[2]
    return float(np.max(np.hypot(*(p - corners[:2]))))


def gray_thumbnail(stack: FrameSource, i: int, side: int) -> np.ndarray:
    """Frame ``i`` as a gray float32 copy of at most ``side`` px on its long side (``cv2.INTER_AREA``).

    JPEG frames are decoded at a reduced size when that is still at least ``side`` px (libjpeg's DCT scaling),
    which is several times faster than decoding them in full.

    Shape:
        ``(h, w)`` with ``max(h, w) <= side``, the frame's aspect ratio.
    """
    h, w = stack.size
    path = stack.frame_path(i)
    gray = None
    if path is not None and path.suffix.lower() in _JPEG:
        for factor, flag in ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                             (2, cv2.IMREAD_REDUCED_GRAYSCALE_2)):
            if max(h, w) // factor >= side:
                img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flag)
                # EXIF orientation is applied by imdecode; a shape that does not match means it was not
                if img is not None and img.ndim == 2 and (img.shape[0] > img.shape[1]) == (h > w):
                    gray = to_float(img)
                break
    if gray is None:
        gray = to_gray(to_float(stack.frame(i, native=True)))
    scale = min(1.0, side / max(h, w))
    out = (max(1, round(w * scale)), max(1, round(h * scale)))
    if (gray.shape[1], gray.shape[0]) != out:
        gray = cv2.resize(gray, out, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray, dtype=np.float32)


def _pairs(n: int) -> list[tuple[int, int]]:
    """Neighbouring pairs at the start, the middle and the end of a stack of ``n`` frames (all of them up to 4)."""
    if n <= 4:
        return [(i, i + 1) for i in range(n - 1)]
    mid = (n - 1) // 2
    return [(0, 1), (mid, mid + 1), (n - 2, n - 1)]


def check_pairs(stack: FrameSource, pairs: list[tuple[int, int]], side: int = CHECK_SIDE
                ) -> list[dict]:
    """Register the second frame of each pair to the first on copies of at most ``side`` px.

    Returns:
        Per pair: ``frames`` (indices), ``matrix`` (second -> first, full-resolution px), ``scale``, ``shift_px``,
        ``displacement_px``, ``score``; or ``failure``.
    """
    size = stack.size
    ecc = AlignConfig()  # the ECC iterations and tolerance of focal align

    def work(i: int) -> tuple[np.ndarray, list[np.ndarray]]:
        small = gray_thumbnail(stack, i, side)
        return small, pyramid(representation(small))

    def register(pair: tuple[int, int]) -> tuple[np.ndarray, float] | None:
        (_, template), (_, moving) = cache[pair[0]], cache[pair[1]]
        try:  # first -> second, small px
            warp = register_pair(template, moving, "similarity", iterations=ecc.iterations, epsilon=ecc.epsilon)
            return warp, score(template[0], moving[0], warp)
        except EccFailed:
            return None

    frames = sorted({i for pair in pairs for i in pair})
    # decoding and ECC release the GIL: the frames, then the pairs, on every core
    with ThreadPoolExecutor(max_workers=max(1, min(len(frames), os.cpu_count() or 1))) as pool:
        cache = dict(zip(frames, pool.map(work, frames), strict=True))
        found = list(pool.map(register, pairs))
    out = []
    for (a, b), fit in zip(pairs, found, strict=True):
        if fit is None:
            out.append({"frames": [a, b], "failure": "ECC did not converge"})
            continue
        warp, quality = fit
        to_small = resize_map(size, cache[a][0].shape)
        m = np.linalg.inv(to_small) @ np.linalg.inv(warp) @ to_small  # second -> first, full-resolution px
        m /= m[2, 2]
        centre = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2, 1.0])
        shift = (m @ centre)[:2] - centre[:2]
        row = {"frames": [a, b], "matrix": m, "score": quality, "scale": magnification(m, size),
               "shift_px": [float(shift[0]), float(shift[1])], "displacement_px": corner_displacement(m, size)}
        if quality < MIN_SCORE:
            row["failure"] = f"score {quality:.2f} < {MIN_SCORE:g}"
        out.append(row)
    return out


def size_factor(size: tuple[int, int]) -> float:
    """How many times ``REFERENCE_SIDE`` the long side of frames of ``size`` ``(H, W)`` is, at least 1: the default
    thresholds of ``check_alignment`` are multiplied by it.

    Defocus moves blurred structures by a share of the frame, so the apparent motion between aligned neighbours grows
    with the frame in pixels: the validation set's 10-frame stack rendered at 6000x4000 shows shifts of 1.1-1.5 px
    between neighbours (the same at 256, 512 and 1024 px copies: not the check's noise), against at most 0.43 px at
    640x480. The classic method's windows grow with the frame as well, so a movement of the same share of the frame
    matters as much to depth at any size."""
    return max(1.0, max(size) / REFERENCE_SIDE)


def check_alignment(stack: FrameSource, *, threshold_px: float | None = None,
                    side: int = CHECK_SIDE) -> AlignCheck:
    """Whether ``stack`` needs alignment (see the module docstring); cheap enough to run on every prediction.

    Args:
        stack: a ``StackFolder`` (at most six frames are decoded, JPEGs at reduced size) or a ``FocalStack``.
        threshold_px: align when the breathing moves the corners of the end frames by more than this many
            full-resolution pixels against the middle frame, or a pair of neighbours is shifted by more than this
            (and ``SHIFT_PX`` times ``size_factor``); None: ``THRESHOLD_PX`` times ``size_factor``.
        side: long side of the registered copies.

    Returns:
        An ``AlignCheck`` with the decision, the measured misalignment and the per-pair transforms and scores.

    Raises:
        InputError: a checked frame cannot be read.
    """
    t0 = time.perf_counter()
    n = len(stack)
    size = stack.size
    factor = size_factor(size)
    threshold_px = THRESHOLD_PX * factor if threshold_px is None else float(threshold_px)
    shift_limit = max(SHIFT_PX * factor, threshold_px)
    side = min(side, max(size))
    rows = check_pairs(stack, _pairs(n), side)
    names = list(stack.names)
    failed = [r for r in rows if "failure" in r]
    good = [r for r in rows if "failure" not in r]
    breathing = shift = None
    if not good:
        f = failed[0]
        needed, reason = False, (f"not aligned: the quick check could not register {names[f['frames'][1]]} to "
                                 f"{names[f['frames'][0]]} ({f['failure']}); use --align on to force it")
    else:
        steps = np.array([r["scale"] - 1.0 for r in good])  # per-step magnification change of each pair
        same_sign = bool(np.all(steps > 0) or np.all(steps < 0))
        # one pair cannot show that the scale changes steadily (defocus fakes a change in any pair): two at least,
        # unless the stack has one pair only
        consistent = (len(good) >= min(2, len(rows)) and same_sign
                      and np.abs(steps).max() <= CONSISTENCY * np.abs(steps).min())
        shift = max(float(np.hypot(*r["shift_px"])) for r in good)
        if consistent:
            half = (n - 1) / 2  # steps from the middle (reference) frame to an end frame
            s = float(np.exp(np.mean(np.log(1.0 + steps)) * half))
            h, w = size
            breathing = abs(s - 1.0) * math.hypot((w - 1) / 2, (h - 1) / 2)
        if breathing is not None and breathing > threshold_px:
            needed, reason = True, (f"aligned: focus breathing moves the end frames' corners by {breathing:.2f} px "
                                    f"(> {threshold_px:.3g} px)")
        elif shift > shift_limit:
            needed, reason = True, (f"aligned: neighbouring frames are shifted by up to {shift:.2f} px "
                                    f"(> {shift_limit:.3g} px)")
        elif breathing is None:
            needed, reason = False, ("not aligned: no steady focus breathing (the frame pairs disagree) and "
                                     f"shifts of at most {shift:.2f} px")
        else:
            needed, reason = False, (f"not aligned: breathing of {breathing:.2f} px and shifts of at most "
                                     f"{shift:.2f} px")
        if failed:  # decided on the other pairs (very defocused end frames may hold too little texture)
            f = failed[0]
            reason += (f"; {names[f['frames'][1]]} could not be registered to {names[f['frames'][0]]} "
                       f"({f['failure']})")
    out = []
    for r in rows:
        row = {"frames": [names[i] for i in r["frames"]]}
        if "matrix" in r:
            row.update({"matrix": [[round(float(v), 7) for v in q] for q in r["matrix"]],
                        "scale": round(r["scale"], 6), "shift_px": [round(v, 3) for v in r["shift_px"]],
                        "displacement_px": round(r["displacement_px"], 3), "score": round(r["score"], 4)})
        if "failure" in r:
            row["failure"] = r["failure"]
        out.append(row)
    worst = None if not good else max(breathing or 0.0, shift)
    return AlignCheck(needed=needed, misalignment_px=worst, breathing_px=breathing, threshold_px=threshold_px,
                      shift_threshold_px=shift_limit, reason=reason, side=side, pairs=out,
                      seconds=time.perf_counter() - t0)
