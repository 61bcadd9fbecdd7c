"""Classical depth from focus: per-pixel peak of the focus measure across the stack.

The peak is refined below the frame spacing by fitting a parabola to the log focus measure at the best frame and
its two neighbours (a Gaussian focus curve), in diopter space (1 / focus distance), where defocus blur is linear.
With known focus distances depth comes out in metres; without them in frame-index units, 1-based (1 = nearest
frame, N = farthest), which every output's metadata states.

Frames are consumed one at a time, so memory stays at a few HxW maps whatever the stack length.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["DepthResult", "PeakTracker", "peak_to_depth", "positions_from_distances", "smooth_by_confidence"]

_EPS = 1e-12
_ROWS = 256  # row block for the per-pixel refinement
_NOISE_FACTOR = 4.0  # in-focus energy must clear this many noise floors to count as evidence


@dataclass
class DepthResult:
    """Output of a depth-from-focus method.

    Attributes:
        depth: HxW float32; metres when ``units == "m"``, else 1-based frame-index units.
        confidence: HxW float32 in [0, 1]; how peaked the focus curve is (0 = no evidence); None where a method
            has no such measure.
        units: ``"m"``, ``"frame_index"`` (classic without focus distances) or ``"relative"`` (a learned model
            without focus distances).
        aif: HxWx3 float32 all-in-focus image in [0, 1], when it was asked for.
    """

    depth: np.ndarray
    confidence: np.ndarray | None
    units: str
    aif: np.ndarray | None = None

    @property
    def metric(self) -> bool:
        return self.units == "m"


def positions_from_distances(distances_m: Sequence[float] | None, n: int) -> np.ndarray:
    """Where each frame sits on the axis the peak is interpolated on: diopters if distances are known, else index."""
    if distances_m is None:
        return np.arange(n, dtype=np.float64)
    return 1.0 / np.asarray(distances_m, dtype=np.float64)


class PeakTracker:
    """Streams focus-measure maps (near to far) and keeps, per pixel, the best frame and its neighbours' values.

    Call ``update(measure)`` once per frame, then ``result(positions)``.
    """

    def __init__(self):
        self.count = 0

    def update(self, m: np.ndarray) -> np.ndarray:
        """Take the next frame's HxW float32 measure; return the uint8 mask (255) of pixels where it is the new best."""
        i = self.count
        self.count += 1
        if i == 0:
            self.best = m.copy()
            self.index = np.zeros(m.shape, np.int32)
            self.prev = m.copy()  # measure at best - 1 (equal to best at the first frame: no left neighbour)
            self.next = m.copy()  # measure at best + 1 (filled when that frame arrives)
            self.total = m.astype(np.float32, copy=True)
            self.low = m.copy()  # weakest response over the stack: the noise floor where nothing is in focus
            self.last = m
            return np.full(m.shape, 255, np.uint8)
        # OpenCV masked copies: numpy's boolean-masked writes are ~20x slower on scattered masks
        cv2.copyTo(m, cv2.compare(self.index, float(i - 1), cv2.CMP_EQ), self.next)
        better = cv2.compare(m, self.best, cv2.CMP_GT)  # uint8, 255 where this frame is the new best
        cv2.copyTo(m, better, self.best)
        cv2.copyTo(np.full_like(self.index, i), better, self.index)
        cv2.copyTo(self.last, better, self.prev)
        cv2.copyTo(m, better, self.next)  # no right neighbour yet: a flat top until one arrives
        self.total += m
        np.minimum(self.low, m, out=self.low)
        self.last = m
        return better

    def result(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sub-frame peak position on the ``positions`` axis, and the confidence.

        Args:
            positions: (N,) axis value of each frame (diopters or indices), monotonic.

        Returns:
            ``(peak HxW float32 in axis units, confidence HxW float32 in [0, 1])``.
        """
        positions = np.asarray(positions, np.float32)
        peak = np.empty(self.best.shape, np.float32)
        confidence = np.empty(self.best.shape, np.float32)
        # noise floor: the typical energy of a pixel's most defocused frame (sensor noise, JPEG artefacts)
        floor = _NOISE_FACTOR * float(np.median(self.low.ravel()[:: max(1, self.low.size // 65536)])) + _EPS
        def block(r: int) -> None:
            rows = slice(r, r + _ROWS)
            peak[rows], confidence[rows] = self._refine(positions, rows, floor)

        # row blocks keep the temporaries small for large frames; numpy releases the GIL, so threads use every core
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(block, range(0, peak.shape[0], _ROWS)))
        return peak, confidence

    def _refine(self, positions: np.ndarray, rows: slice, floor: float) -> tuple[np.ndarray, np.ndarray]:
        n, k = self.count, self.index[rows]
        best = self.best[rows]
        x1 = positions[k]
        x0 = positions[np.maximum(k - 1, 0)]
        x2 = positions[np.minimum(k + 1, n - 1)]
        y0, y1, y2 = (np.log(v + np.float32(1e-20)) for v in (self.prev[rows], best, self.next[rows]))
        # vertex of the parabola through (x0, y0), (x1, y1), (x2, y2); unequal spacing allowed
        num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
        den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
        ok = (k > 0) & (k < n - 1) & (den != 0)
        vertex = x1 - 0.5 * num / np.where(ok, den, 1.0)
        peak = np.clip(np.where(ok, vertex, x1), np.minimum(x0, x2), np.maximum(x0, x2))
        mean = self.total[rows] / n
        excess = np.maximum(best - mean, 0.0)  # in-focus energy above the stack's average
        peakedness = excess / (best + _EPS) * n / (n - 1)  # 0 for a flat focus curve, 1 for a single-frame peak
        confidence = np.clip(peakedness * excess / (excess + floor), 0.0, 1.0)
        return peak, confidence


def smooth_by_confidence(values: np.ndarray, confidence: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: a Gaussian average of ``values`` weighted by ``confidence`` (fills weak regions)."""
    if sigma <= 0:
        return values
    w = confidence.astype(np.float32) + 1e-6
    num = cv2.GaussianBlur(values * w, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    den = cv2.GaussianBlur(w, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return num / den


def peak_to_depth(peak: np.ndarray, distances_m: Sequence[float] | None) -> tuple[np.ndarray, str]:
    """Axis position to depth: metres from diopters, or 1-based frame index."""
    if distances_m is None:
        return (peak + 1.0).astype(np.float32), "frame_index"
    return (1.0 / np.maximum(peak, _EPS)).astype(np.float32), "m"
