"""A quick check of whether a stack needs alignment: frame-to-frame scale and shift on small copies.

``check_alignment`` is what ``focal predict`` / ``focal fuse`` run by default (``--align auto``), so it must cost
little next to the prediction itself:

* Only a few frames are looked at: the first, the middle (the reference) and the last; focus breathing grows
  monotonically along the stack, so the two ends show the most of it. JPEG frames are decoded at 1/2, 1/4 or 1/8
  of their size by libjpeg's DCT scaling (much faster than a full decode), other formats in full, and each is
  reduced to a gray copy of at most ``side`` pixels on its long side.
* Each end frame is registered to the middle one with the same coarse-to-fine ECC as ``focal align`` (similarity
  model, started from a phase-correlation shift), on those copies.
* The misalignment of a frame is the largest displacement of the four image corners under its transform, in
  pixels of the FULL-resolution frame (a 0.1 % breathing on a 4000 px wide frame moves its corners by 2.5 px).
  Alignment is needed when any frame's misalignment exceeds ``threshold_px``.

Estimates on small copies are noisy: a copy of 256 px for a 4000 px frame cannot resolve 0.5 px at full size. The
check therefore only calls a stack aligned when the estimate is below the threshold by more than its resolution
(``resolution_px``: 0.1 px of the copy, scaled to the full frame); an undecided estimate is measured again on
copies twice as large (and so on) before the decision. A stack already aligned by construction (synthetic stacks, the
output of ``focal align``) measures ~0 and is left untouched.

If the estimate fails (too little texture, ECC does not converge), the check says so and alignment is not applied:
``--align on`` forces it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from focalcli.align.register import (
    AlignConfig,
    _EccFailed,
    _magnification,
    _pyramid,
    _register_pair,
    _representation,
    _resize_map,
    _score,
)
from focalcli.focus.measures import to_gray
from focalcli.io.images import decode_image, to_float
from focalcli.io.stack import FocalStack, StackFolder

__all__ = ["AlignCheck", "CHECK_SIDE", "THRESHOLD_PX", "check_alignment", "corner_displacement", "gray_thumbnail"]

CHECK_SIDE = 256  # px: long side of the copies the check registers
THRESHOLD_PX = 0.5  # align when a frame's corners move more than this (full-resolution pixels)
RESOLUTION = 0.05  # px of the check copy: what ECC on a defocused pair can tell apart from zero
MIN_SCORE = 0.3  # below this correlation the estimate is not trusted
_JPEG = (".jpg", ".jpeg")


@dataclass
class AlignCheck:
    """The outcome of ``check_alignment``.

    Attributes:
        needed: whether the stack should be aligned.
        misalignment_px: the largest corner displacement of any checked frame, full-resolution pixels (None when
            the estimate failed).
        threshold_px: the threshold it was compared with.
        reason: one line on how the decision was made.
        side: long side (px) of the copies the final estimate used.
        frames: per checked frame: ``name``, ``index``, ``matrix`` (3x3, frame -> reference pixels at full
            resolution), ``scale``, ``shift_px`` (of the image centre), ``displacement_px`` and ``score``.
        seconds: time the check took.
    """

    needed: bool
    misalignment_px: float | None
    threshold_px: float
    reason: str
    side: int
    reference: str
    frames: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        """Everything but ``seconds`` (so that the same stack always gives the same record)."""
        return {
            "needed": self.needed,
            "misalignment_px": None if self.misalignment_px is None else round(self.misalignment_px, 3),
            "threshold_px": self.threshold_px,
            "reason": self.reason,
            "side": self.side,
            "reference": self.reference,
            "frames": self.frames,
        }


def corner_displacement(matrix: np.ndarray, size: tuple[int, int]) -> float:
    """Largest distance (px) that ``matrix`` (3x3) moves one of the four corners of an ``(H, W)`` image."""
    h, w = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T  # (3, 4)
    p = matrix @ corners
    p = p[:2] / p[2]
    return float(np.max(np.hypot(*(p - corners[:2]))))


def gray_thumbnail(stack: StackFolder | FocalStack, i: int, side: int) -> np.ndarray:
    """Frame ``i`` as a gray float32 copy of at most ``side`` px on its long side (``cv2.INTER_AREA``).

    JPEG frames are decoded at a reduced size when that is still at least ``side`` px (libjpeg's DCT scaling),
    which is several times faster than decoding them in full.

    Shape:
        ``(h, w)`` with ``max(h, w) <= side``, the frame's aspect ratio.
    """
    if isinstance(stack, FocalStack):
        h, w = stack.size
        gray = to_gray(np.ascontiguousarray(stack.frames[i].permute(1, 2, 0).float().cpu().numpy()))
    else:
        h, w = stack.info.height, stack.info.width
        path = stack.frame_paths[i]
        gray = None
        if path.suffix.lower() in _JPEG:
            for factor, flag in ((8, cv2.IMREAD_REDUCED_GRAYSCALE_8), (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
                                 (2, cv2.IMREAD_REDUCED_GRAYSCALE_2)):
                if max(h, w) // factor >= side:
                    img = cv2.imdecode(np.fromfile(path, dtype=np.uint8), flag)
                    # EXIF orientation is applied by imdecode; a size that does not match means it was not
                    if img is not None and img.ndim == 2 and (img.shape[0] > img.shape[1]) == (h > w):
                        gray = to_float(img)
                    break
        if gray is None:
            gray = to_gray(to_float(decode_image(path)))
    scale = min(1.0, side / max(h, w))
    out = (round(w * scale), round(h * scale))
    if (gray.shape[1], gray.shape[0]) != out:
        gray = cv2.resize(gray, out, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray, dtype=np.float32)


def _estimate(stack, indices: list[int], ref: int, size: tuple[int, int], side: int) -> list[dict]:
    """Register frames ``indices`` to frame ``ref`` on copies of ``side`` px; one dict per frame."""
    config = AlignConfig(model="similarity", finest_level=0, max_size=max(64, side))
    ref_small = gray_thumbnail(stack, ref, side)
    to_small = _resize_map(size, ref_small.shape)
    from_small = np.linalg.inv(to_small)
    template = _pyramid(_representation(ref_small))
    out = []
    for i in indices:
        small = gray_thumbnail(stack, i, side)
        moving = _pyramid(_representation(small))
        try:
            warp = _register_pair(template, moving, "similarity", config, 1.0)  # reference -> frame, small px
            score = _score(template[0], moving[0], warp)
        except _EccFailed:
            out.append({"index": i, "failure": "ECC did not converge"})
            continue
        m = from_small @ np.linalg.inv(warp) @ to_small  # frame -> reference, full-resolution px
        m /= m[2, 2]
        centre = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2, 1.0])
        shift = (m @ centre)[:2] - centre[:2]
        out.append({"index": i, "matrix": m, "score": score, "scale": _magnification(m, size),
                    "shift_px": [float(shift[0]), float(shift[1])], "displacement_px": corner_displacement(m, size)})
    return out


def check_alignment(stack: StackFolder | FocalStack, *, threshold_px: float = THRESHOLD_PX,
                    side: int = CHECK_SIDE) -> AlignCheck:
    """Whether ``stack`` needs alignment (see the module docstring); cheap enough to run on every prediction.

    Args:
        stack: a ``StackFolder`` (only three frames are decoded, JPEGs at reduced size) or a ``FocalStack``.
        threshold_px: align when a frame's corners move more than this many full-resolution pixels.
        side: long side of the copies registered first (larger copies settle close calls).

    Returns:
        An ``AlignCheck`` with the decision, the misalignment, the per-frame transforms and scores.

    Raises:
        InputError: a checked frame cannot be read.
    """
    t0 = time.perf_counter()
    n = len(stack)
    size = stack.size if isinstance(stack, FocalStack) else (stack.info.height, stack.info.width)
    ref = (n - 1) // 2
    indices = sorted({0, n - 1} - {ref})
    names = list(stack.names)
    long_side = max(size)
    side = min(side, long_side)
    while True:
        frames = _estimate(stack, indices, ref, size, side)
        resolution = RESOLUTION * long_side / side
        good = [f for f in frames if "failure" not in f and f["score"] >= MIN_SCORE]
        worst = max((f["displacement_px"] for f in good), default=None)
        undecided = worst is not None and len(good) == len(frames) and abs(worst - threshold_px) < resolution
        if not undecided or side >= long_side:
            break
        side = min(2 * side, long_side)  # a close call: measure again on larger copies
    for f in frames:
        f["name"] = names[f["index"]]
        if "failure" not in f and f["score"] < MIN_SCORE:
            f["failure"] = f"score {f['score']:.2f} < {MIN_SCORE:g}"
    failed = [f for f in frames if "failure" in f]
    if failed:
        listed = ", ".join(f["name"] for f in failed)
        needed, reason = False, (f"not aligned: the quick check could not register {listed} ({failed[0]['failure']}); "
                                 "use --align on to force it")
    elif worst is None:
        needed, reason = False, "nothing to check"
    elif worst > threshold_px:
        needed, reason = True, f"aligned: the frames move by up to {worst:.2f} px (> {threshold_px:g} px)"
    else:
        needed, reason = False, f"not aligned: the frames move by at most {worst:.2f} px (<= {threshold_px:g} px)"
    rows = []
    for f in frames:
        row = {"name": f["name"], "index": f["index"]}
        if "matrix" in f:
            row.update({"matrix": [[round(float(v), 7) for v in r] for r in f["matrix"]],
                        "scale": round(f["scale"], 6), "shift_px": [round(v, 3) for v in f["shift_px"]],
                        "displacement_px": round(f["displacement_px"], 3), "score": round(f["score"], 4)})
        if "failure" in f:
            row["failure"] = f["failure"]
        rows.append(row)
    return AlignCheck(needed=needed, misalignment_px=worst, threshold_px=threshold_px, reason=reason, side=side,
                      reference=names[ref], frames=rows, seconds=time.perf_counter() - t0)
