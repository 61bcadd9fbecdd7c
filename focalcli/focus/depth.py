"""Classical depth from focus: per-pixel peak of the focus measure across the stack, then filling of weak pixels.

Peak: the best frame, refined below the frame spacing by the vertex of the parabola through the log focus measure
at the best frame and its two neighbours (a Gaussian focus curve; in a sparse stack its offset from the best
frame is then stretched a little toward the neighbours, for the peakier curves there; at an end frame, through it
and its two inner neighbours, within half the end interval, and for peaky curves through -best/measure, a Cauchy
curve, instead of the log), in diopter space (1 / focus distance), where defocus blur is linear.
With known focus distances depth comes out in metres; without them in frame-index units, 1-based (1 = nearest
frame, N = farthest), which every output's metadata states.

Confidence: how far a pixel's best focus energy rises above its own most-defocused energy, in units of the stack's
noise floor (the median of that most-defocused energy over the image): ``snr^2 / (snr^2 + c^2)`` in [0, 1].

Filling (``fill_weak``): textureless pixels have no focus peak of their own, and their argmax is whatever frame the
noise or a neighbour's blurred edge favours, often the nearest or the farthest. Their depth is taken from their
surroundings instead: a confidence-weighted Gaussian average (normalised convolution), a push-pull pyramid for
regions too large for it, then a confidence-weighted guided filter (He et al.) with the all-in-focus gray image as
guide, so depth edges follow image edges. All of it works on the peak axis (diopters), where blur is linear.

Frames are consumed one at a time, so memory stays at a few HxW maps whatever the stack length.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from focalcli.focus.measures import gaussian_blur, quantile
from focalcli.io.depth import DepthResult  # its home (io: every method returns one); re-exported here

__all__ = ["DepthResult", "FrameSmoother", "PeakTracker", "confidence_from_snr", "curve_width", "end_plane_shares",
           "fill_weak", "guided_filter", "noise_floor", "peak_to_depth", "positions_from_distances", "push_pull"]

_EPS = 1e-12
_ROWS = 256  # row block for the per-pixel refinement
CONFIDENCE_SNR = 4.0  # focus-energy SNR at which confidence is 1/2 (measured on the validation stacks)
CONFIDENCE_POWER = 2.0  # steepness of the confidence curve around CONFIDENCE_SNR
_GUIDED_EPS = 1e-3  # guided-filter regulariser (gray levels^2): below it, guide variation is treated as flat
_GUIDED_FLOOR = 0.05  # weight of the weakest pixel in the guided filter, so every window has some support
_FILL_DENSITY = 0.1  # below this local confidence density the push-pull fill takes over
_SAMPLES = 65536  # pixels sampled (evenly) for the curve-shape statistics of ``PeakTracker.drop`` and ``tail``
END_SURE = 0.5  # confidence from which a pixel counts in ``end_plane_shares``
PEAK_STRETCH = 0.8  # exponent of the inner peak's fractional offset from its best frame (``_stretch``)


def positions_from_distances(distances_m: Sequence[float] | None, n: int) -> np.ndarray:
    """Where each frame sits on the axis the peak is interpolated on: diopters if distances are known, else index."""
    if distances_m is None:
        return np.arange(n, dtype=np.float64)
    return 1.0 / np.asarray(distances_m, dtype=np.float64)


class FrameSmoother:
    """Gaussian smoothing of focus-measure maps along the stack (across frames), streamed.

    In a dense schedule a focus curve spans many frames and each frame's measure is noisy: the per-pixel peak of
    the raw curve jumps by frames (2 frame spacings median error on the validation set's 41-frame stack).
    Averaging neighbouring frames' maps before the peak is found removes most of that. ``push`` takes frame i's
    maps and yields the smoothed maps of the frames that are complete; ``flush`` yields the rest. Frame j's kernel
    is a Gaussian of ``sigma[j]`` frames (a schedule can be dense in one part and sparse in another), truncated at
    ``2 sigma[j]`` and at ``MAX_RADIUS`` frames and renormalised at the ends of the stack, so memory holds at most
    ``2 MAX_RADIUS + 1`` frames' maps whatever the stack length. ``sigma`` 0 passes the maps through untouched;
    ``sigma`` None holds the first ``PROBE_FRAMES`` frames (or all, if fewer) and asks ``estimate`` for it (one
    value for every frame) from their first maps (``curve_width``), for stacks whose optics are unknown.

    Shape:
        each item of ``push``: a tuple of maps (any shapes, None allowed); yields tuples of the same structure.
    """

    PROBE_FRAMES = 9
    MAX_RADIUS = 4

    def __init__(self, n: int, sigma: float | Sequence[float] | None,
                 estimate: Callable[[list[np.ndarray]], float] | None = None):
        self.n, self._estimate = n, estimate
        self._buffer: deque[tuple] = deque()  # the maps of frames first .. count - 1
        self._first = self.count = self.emitted = 0
        self.sigmas = self.radius = None
        if sigma is not None:
            self._set(sigma)

    def _set(self, sigma: float | Sequence[float]) -> None:
        sigmas = np.broadcast_to(np.asarray(sigma, np.float64), (self.n,)).copy()
        self.sigmas = np.where(sigmas > 0, sigmas, 0.0)
        self._radii = np.minimum(np.ceil(2.0 * self.sigmas), min(self.MAX_RADIUS, self.n - 1)).astype(int)
        self.radius = int(self._radii.max()) if self.n else 0

    @property
    def sigma(self) -> float:
        """The median of the frames' sigmas (what the sidecar records); 0 before it is known."""
        return float(np.median(self.sigmas)) if self.sigmas is not None else 0.0

    def push(self, maps: tuple) -> Iterator[tuple]:
        self._buffer.append(maps)
        self.count += 1
        if self.sigmas is None:
            if self.count < min(self.n, self.PROBE_FRAMES):
                return
            self._set(self._estimate([m[0] for m in self._buffer]) if self._estimate else 0.0)
        while self.emitted < self.count and self.emitted + self._radii[self.emitted] < self.count:
            yield self._emit()

    def flush(self) -> Iterator[tuple]:
        while self.emitted < self.count:
            yield self._emit()

    def _emit(self) -> tuple:
        j = self.emitted
        r = int(self._radii[j])
        self.emitted += 1
        if self.radius == 0:
            self._first += 1
            return self._buffer.popleft()
        if r == 0:
            out = self._buffer[j - self._first]
        else:
            lo, hi = max(0, j - r), min(self.count - 1, j + r)
            w = np.exp(-0.5 * ((np.arange(lo, hi + 1) - j) / self.sigmas[j]) ** 2)
            w = (w / w.sum()).astype(np.float32)
            frames = [self._buffer[i - self._first] for i in range(lo, hi + 1)]
            out = tuple(None if frames[0][k] is None else sum(wi * f[k] for wi, f in zip(w, frames, strict=True))
                        for k in range(len(frames[0])))
        while self._first < self.emitted - self.radius:  # no frame still to come reaches back this far
            self._buffer.popleft()
            self._first += 1
        return out


def curve_width(maps: list[np.ndarray], snr: float = 8.0) -> float | None:
    """How sharply focus curves bend at their peak, from a stack's first frames (near to far): the median, over
    pixels whose peak among these frames is at least two frames from their ends and rises more than ``snr`` noise
    floors, of ``log m[k] - (log m[k-2] + log m[k+2]) / 2`` at the peak frame k. None without such pixels (fewer
    than 50, or fewer than 5 frames).

    It grows with the blur step between frames: on the validation set about 0.1 at a 0.1-0.2 px step (the noise
    keeps it from falling further), 0.3-0.45 at 0.45-0.9 px, 0.9 at 1.8 px and 1.5-2 at 2.7-4 px.
    """
    k = len(maps)
    if k < 5:
        return None
    step = max(1, maps[0].size // _SAMPLES)
    values = np.stack([m.ravel()[::step] for m in maps])  # (k, samples)
    logs = np.log(values + np.float32(1e-20))
    best = logs.argmax(0)
    floor = max(quantile(values.min(0), 0.5), _EPS)
    ok = (best >= 2) & (best <= k - 3) & (values.max(0) - values.min(0) > snr * floor)
    if ok.sum() < 50:
        return None
    at, cols = best[ok], np.nonzero(ok)[0]
    return quantile(logs[at, cols] - 0.5 * (logs[at - 2, cols] + logs[at + 2, cols]), 0.5)


class PeakTracker:
    """Streams focus-measure maps (near to far) and keeps, per pixel, the best frame and its neighbours' values.

    Call ``update(measure)`` once per frame, then ``peak(positions)``. ``low`` is each pixel's weakest response (its
    noise floor where nothing is in focus).
    """

    def __init__(self):
        self.count = 0

    def update(self, m: np.ndarray) -> np.ndarray:
        """Take the next frame's HxW float32 measure; return the uint8 mask (255) of pixels where it is the new best
        (read-only: the tracker keeps it for its next two updates)."""
        i = self.count
        self.count += 1
        if i == 0:
            self.best = m.copy()
            self.index = np.zeros(m.shape, np.int32)
            self._frame = np.empty(m.shape, np.int32)  # filled with the frame number: the source of masked copies
            self.prev = m.copy()  # measure at best - 1 (equal to best at the first frame: no left neighbour)
            self.next = m.copy()  # measure at best + 1 (filled when that frame arrives)
            self.prev2 = m.copy()  # measure at best - 2 (for a peak at the last frame)
            self.next2 = m.copy()  # measure at best + 2 (for a peak at the first frame)
            self.low = m.copy()
            self.last = self.last2 = m
            self._won = np.full(m.shape, 255, np.uint8)  # where frame i - 1 became the best (index == i - 1)
            self._won.flags.writeable = False  # handed out too (the return value): nobody may write into it
            self._won2 = None  # where frame i - 2 did
            return self._won
        # OpenCV masked copies: numpy's boolean-masked writes are ~20x slower on scattered masks. The best frame is
        # i - 1 where frame i - 1 won (``_won``), and i - 2 where frame i - 2 won and frame i - 1 did not: uint8
        # masks from the last two updates, cheaper than comparing the int32 index
        cv2.copyTo(m, self._won, self.next)
        if i >= 2:
            cv2.copyTo(m, cv2.bitwise_and(self._won2, cv2.bitwise_not(self._won)), self.next2)
        better = cv2.compare(m, self.best, cv2.CMP_GT)  # uint8, 255 where this frame is the new best
        cv2.copyTo(m, better, self.best)
        self._frame.fill(i)
        cv2.copyTo(self._frame, better, self.index)
        cv2.copyTo(self.last, better, self.prev)
        cv2.copyTo(self.last2, better, self.prev2)
        cv2.copyTo(m, better, self.next)  # no right neighbour yet: a flat top until one arrives
        np.minimum(self.low, m, out=self.low)
        self.last2, self.last = self.last, m
        better.flags.writeable = False
        self._won2, self._won = self._won, better
        return better

    def drop(self, floor: float, snr: float = 8.0) -> float | None:
        """How sharply the focus curves fall from their peak: the median, over pixels whose peak is an inner frame
        and rises more than ``snr`` noise floors above their weakest frame, of the log ratio of the best frame's
        measure to its larger neighbour's. About 0.05 when the frames are close against the depth of field, 0.3-1
        when they are far apart (a sparse schedule); None without such pixels (fewer than 100, or < 3 frames)."""
        step = max(1, self.best.size // _SAMPLES)
        best, low, index = (a.ravel()[::step] for a in (self.best, self.low, self.index))
        inner = (index > 0) & (index < self.count - 1) & (best - low > snr * floor)
        if inner.sum() < 100:
            return None
        neighbour = np.maximum(self.prev.ravel()[::step][inner], self.next.ravel()[::step][inner])
        return quantile(np.log(best[inner] + 1e-20) - np.log(neighbour + 1e-20), 0.5)

    def tail(self, floor: float, snr: float = 8.0) -> float | None:
        """The shape of the focus curves: the median, over pixels whose peak is at least two frames from either end
        and rises more than ``snr`` noise floors, of the log drop from the first to the second neighbour over the
        log drop from the best frame to the first (both sides). A log-parabola (a Gaussian curve) gives 3 or more;
        curves that fall steeply and then level off (a disk-shaped blur, frames far apart) give 1-1.5. None without
        such pixels (fewer than 100, or < 5 frames)."""
        step = max(1, self.best.size // _SAMPLES)
        flat = lambda a: a.ravel()[::step]  # noqa: E731
        best, low, index = flat(self.best), flat(self.low), flat(self.index)
        ok = (index >= 2) & (index <= self.count - 3) & (best - low > snr * floor)
        if ok.sum() < 100:
            return None
        log = lambda a: np.log(flat(a)[ok] + 1e-20)  # noqa: E731
        b = log(self.best)
        ratios = [(log(one) - log(two)) / np.maximum(b - log(one), 1e-3)
                  for one, two in ((self.prev, self.prev2), (self.next, self.next2))]
        return quantile(np.concatenate(ratios), 0.5)

    def peak(self, positions: np.ndarray, stretch: bool = False, five: bool = False,
             cauchy_ends: bool = False) -> np.ndarray:
        """Sub-frame peak position on the ``positions`` axis: HxW float32 in axis units.

        Args:
            positions: (N,) axis value of each frame (diopters or indices), monotonic.
            stretch: push inner peaks away from their best frame (``_stretch``), for sparse schedules.
            five: fit the parabola to five frames (the best one and two on each side, least squares) where the
                peak is two frames or more from both ends: in a dense schedule the curve spans several frames, and
                five of them average out more noise than three.
            cauchy_ends: at an end frame, fit the parabola to ``-best / measure`` instead of the log measure (see
                ``_refine``), for peaky focus curves (``tail``).
        """
        positions = np.asarray(positions, np.float32)
        peak = np.empty(self.best.shape, np.float32)
        weights = _vertex5_weights(positions) if five and self.count >= 5 else None

        def block(r: int) -> None:
            rows = slice(r, r + _ROWS)
            peak[rows] = self._refine(positions, rows, stretch, weights, cauchy_ends)

        # row blocks keep the temporaries small for large frames; numpy releases the GIL, so threads use every core
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(block, range(0, peak.shape[0], _ROWS)))
        return peak

    def _refine(self, positions: np.ndarray, rows: slice, stretch: bool, weights, cauchy_ends: bool) -> np.ndarray:
        n, k = self.count, self.index[rows]
        log = lambda v: np.log(v[rows] + np.float32(1e-20))  # noqa: E731
        y_prev, y_best, y_next = log(self.prev), log(self.best), log(self.next)
        x1 = positions[k]
        x0 = positions[np.maximum(k - 1, 0)]
        x2 = positions[np.minimum(k + 1, n - 1)]
        # an inner peak: the vertex through the best frame and its neighbours (it falls within half a step of x1)
        inner = _vertex(x0, y_prev, x1, y_best, x2, y_next)
        out = np.where((k > 0) & (k < n - 1), _stretch(inner, x0, x1, x2) if stretch else inner, x1)
        if weights is not None:  # five frames (``peak(five=True)``)
            ys = [log(self.prev2), y_prev, y_best, y_next, log(self.next2)]
            fitted = _vertex5(positions, k, ys, weights)
            out = np.where(np.isfinite(fitted), fitted, out)
        if n >= 3:
            # a peak at an end frame: the parabola through it and its two inner neighbours, clipped to the half of
            # the end interval next to the end frame (the end frame won, so the peak is at least that close to it)
            # and never beyond it (depth outside the focus range stays at the end plane). For peaky focus curves
            # (``cauchy_ends``: a lens's disk-shaped blur) it is fitted to -best/measure (a Cauchy-shaped curve:
            # 1/measure is a parabola), not to the log: such curves fall steeply near their peak and level off
            # further out, so the log of three frames on one side of the peak is mostly convex, its parabola has no
            # maximum, and the peak stays on the end plane. On the 5-frame F/2.8 validation set (0.6-10 m), AbsRel
            # 0.141 with the peak kept on the end frame, 0.093 with the log-parabola, 0.072 with the Cauchy one.
            # Gaussian curves keep the log, which is exact for them (the Cauchy fit pulls a scene beyond the end
            # plane up to half an interval inward there).
            curve = (lambda f: -self.best[rows] / (f[rows] + np.float32(_EPS))) if cauchy_ends else log  # noqa: E731
            for end, inner, frames, at_end in ((0, 1, (self.best, self.next, self.next2), k == 0),
                                               (n - 1, n - 2, (self.prev2, self.prev, self.best), k == n - 1)):
                if not at_end.any():
                    continue
                xs = positions[[0, 1, 2]] if end == 0 else positions[[n - 3, n - 2, n - 1]]
                vertex = _vertex(xs[0], curve(frames[0]), xs[1], curve(frames[1]), xs[2], curve(frames[2]))
                lo, hi = sorted((positions[end], (positions[end] + positions[inner]) / 2))
                out = np.where(at_end, np.clip(vertex, lo, hi), out)
        return out.astype(np.float32)


def _vertex5_weights(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per best frame k (rows, 2 <= k <= N-3; other rows unused), the weights that turn the log measures of frames
    k-2 .. k+2 into the ``a`` and ``b`` of the least-squares parabola ``a u^2 + b u + c``, u the offset from frame k
    in units of half the spacing between its neighbours. They depend on the positions only, so a pixel's fit is
    ten multiply-adds.

    Shape:
        ``(N,)`` -> two ``(N, 5)`` float32 arrays.
    """
    n = len(positions)
    wa, wb = np.zeros((n, 5), np.float32), np.zeros((n, 5), np.float32)
    for k in range(2, n - 2):
        x = positions[k - 2 : k + 3].astype(np.float64)
        u = (x - x[2]) / (abs(x[3] - x[1]) / 2 or 1.0)
        design = np.stack([u * u, u, np.ones(5)], axis=1)  # (5, 3)
        solve = np.linalg.pinv(design)  # (3, 5): least squares
        wa[k], wb[k] = solve[0], solve[1]
    return wa, wb


def _vertex5(positions: np.ndarray, k: np.ndarray, ys: list[np.ndarray], weights) -> np.ndarray:
    """Vertex of the least-squares parabola through the log measures ``ys`` of frames k-2 .. k+2, within half a
    spacing of frame k on either side; NaN where the parabola has no maximum or k is within 2 of an end.

    Shape:
        ``k`` and each of ``ys``: ``(h, w)``; returns ``(h, w)`` float32.
    """
    n = len(positions)
    wa, wb = weights
    kk = np.clip(k, 2, max(n - 3, 2))
    if np.allclose(wa[2 : n - 2], wa[2], atol=1e-6) and np.allclose(wb[2 : n - 2], wb[2], atol=1e-6):
        wa, wb = wa[2], wb[2]  # evenly spaced frames (the usual schedules): the same weights for every pixel
    else:
        wa, wb = wa[kk].transpose(2, 0, 1), wb[kk].transpose(2, 0, 1)  # (5, h, w)
    a = sum(wa[j] * ys[j] for j in range(5))
    b = sum(wb[j] * ys[j] for j in range(5))
    x1 = positions[kk]
    half = np.abs(positions[np.minimum(kk + 1, n - 1)] - positions[kk - 1]) / 2
    lo = (positions[kk - 1] - x1) / np.maximum(half, _EPS) / 2  # half the spacing to each neighbour, in u units
    hi = (positions[np.minimum(kk + 1, n - 1)] - x1) / np.maximum(half, _EPS) / 2
    maximum = (a < 0) & (k >= 2) & (k <= n - 3)
    offset = np.clip(-b / np.where(maximum, 2.0 * a, 1.0), np.minimum(lo, hi), np.maximum(lo, hi))
    return np.where(maximum, x1 + offset * half, np.nan).astype(np.float32)


def _stretch(vertex, x0, x1, x2) -> np.ndarray:
    """The vertex's offset from the best frame ``x1``, as a fraction ``t`` of the half spacing on its side, raised
    to ``PEAK_STRETCH``: ``t -> t^0.8`` (0 and 1 stay put).

    The log-parabola is exact for a Gaussian focus curve. Where the frames are far apart against the depth of
    field, a lens's disk-shaped blur makes the curve peakier than that, its parabola vertex is drawn toward the best
    frame, and depth clusters at the focus planes (a staircase). On the validation set's sparse schedules this
    moves AbsRel 0.064 -> 0.061 (10 frames over 0.6-10 m); where the curves are Gaussian it would add error, so the
    classic method applies it only to sparse stacks whose curves are peaky (``PeakTracker.drop`` and ``tail``).
    """
    d = vertex - x1
    side = np.where(d * (x2 - x1) > 0, np.abs(x2 - x1), np.abs(x1 - x0)) * 0.5  # half spacing toward the vertex
    t = np.clip(np.abs(d) / np.maximum(side, _EPS), 0.0, 1.0)
    return x1 + np.sign(d) * side * t**PEAK_STRETCH


def _vertex(x0, y0, x1, y1, x2, y2) -> np.ndarray:
    """Vertex of the parabola through (x0, y0), (x1, y1), (x2, y2), unequal spacing allowed; x1 where the parabola
    has no maximum (collinear points or one that opens upwards)."""
    num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    slope_right = (y2 - y1) / np.where(x2 != x1, x2 - x1, 1.0)
    slope_left = (y1 - y0) / np.where(x1 != x0, x1 - x0, 1.0)
    ok = (den != 0) & ((slope_right - slope_left) * np.sign(x2 - x0) < 0)  # second difference < 0: a maximum
    return np.where(ok, x1 - 0.5 * num / np.where(ok, den, 1.0), x1)


def end_plane_shares(peak: np.ndarray, positions: np.ndarray, confidence: np.ndarray) -> tuple[float, float] | None:
    """The shares of the confident pixels (confidence >= ``END_SURE``) whose peak sits on the nearest and on the
    farthest focus plane: ``(near, far)``; None with fewer than 3 frames or 100 such pixels (sampled).

    A pixel beyond an end plane is sharpest in the end frame, its focus curve still rising there, and its peak stays
    on that plane (``PeakTracker.peak``), so a large share says the scene extends beyond the focus range and its
    depth there is only a bound. On the validation set (10 frames from the 5th to the 50th depth percentile, about
    half the scene beyond the far plane) the far share is 0.28-0.87 in 7 of 9 scenes (0.02 in one, too few
    confident pixels in another); in the other 63 stacks (0-5 % of the scene beyond either plane) both shares are at
    most 0.21, but for one far share of 0.41.

    Shape:
        ``peak`` and ``confidence``: ``(H, W)``; ``positions``: ``(N,)`` on the peak's axis (diopters or indices).
    """
    n = len(positions)
    if n < 3:  # two frames: every peak is on one of the planes
        return None
    step = max(1, peak.size // _SAMPLES)
    sure = confidence.ravel()[::step] >= END_SURE
    if sure.sum() < 100:
        return None
    p = peak.ravel()[::step][sure]
    tol = 1e-3 * abs(float(positions[-1]) - float(positions[0]))
    near, far = (float(np.mean(np.abs(p - positions[e]) <= tol)) for e in (0, n - 1))
    return near, far


def noise_floor(low: np.ndarray, best: np.ndarray) -> float:
    """The stack's focus-energy noise floor: the median over the image of each pixel's weakest energy.

    Never zero: a noise-free synthetic stack gets a floor far below its textured pixels' energy.
    """
    step = max(1, low.size // 65536)
    floor = quantile(low.ravel()[::step], 0.5)
    return max(floor, 1e-6 * quantile(best.ravel()[::step], 0.9), _EPS)


def confidence_from_snr(energy: np.ndarray, low: np.ndarray, floor: float, snr: float | None = None,
                        power: float | None = None) -> np.ndarray:
    """``s^p / (s^p + c^p)`` with ``s = (energy - low) / floor``: 0 without a rise above the floor, 1 far above.

    ``c`` = ``snr`` (default ``CONFIDENCE_SNR``), ``p`` = ``power`` (default ``CONFIDENCE_POWER``).
    """
    snr = CONFIDENCE_SNR if snr is None else snr
    power = CONFIDENCE_POWER if power is None else power
    s = np.subtract(energy, low, dtype=np.float32)  # one full-size temporary, then in place (24 MP: 0.39 -> 0.2 s)
    np.maximum(s, 0.0, out=s)
    s *= np.float32(1.0 / (floor * snr))
    np.power(s, np.float32(power), out=s)
    return np.divide(s, s + np.float32(1.0), out=s)


def push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill by a push-pull pyramid (Gortler et al. 1996): weighted means, coarser where the weights run out.

    Shape:
        values, weight: ``(H, W)`` float32, weight >= 0 (1 = fully trusted); returns ``(H, W)`` float32.
    """
    levels = [(values * weight, weight.astype(np.float32))]
    while min(levels[-1][1].shape) > 2:
        a, b = levels[-1]
        a, b = cv2.pyrDown(a) * 4.0, cv2.pyrDown(b) * 4.0  # sums over each coarse pixel's footprint
        clamp = np.minimum(1.0, 1.0 / np.maximum(b, _EPS))  # a coarse pixel with weight >= 1 is fully trusted
        levels.append((a * clamp, b * clamp))
    a, b = levels[-1]
    est = a / np.maximum(b, _EPS)
    if not (b > 0).any():
        est = np.full_like(a, float(values.mean()))
    for a, b in reversed(levels[:-1]):
        up = cv2.resize(est, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
        trust = np.minimum(b, 1.0)
        est = a * (trust / np.maximum(b, _EPS)) + (1.0 - trust) * up
    return est.astype(np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, weight: np.ndarray, radius: int,
                  eps: float = _GUIDED_EPS) -> np.ndarray:
    """Confidence-weighted guided filter: ``src`` smoothed within windows, keeping the edges of ``guide``.

    In each ``(2r+1)^2`` window, ``src ~ a * guide + b`` is fitted by least squares weighted by ``weight`` (with
    ``eps`` damping ``a``); every pixel then averages the fits of the windows that cover it (He et al. 2013).

    Shape:
        guide, src, weight: ``(H, W)`` float32; returns ``(H, W)`` float32.
    """
    h, w = src.shape
    radius = int(max(1, min(radius, max(h, w))))
    ksize = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32F, ksize, borderType=cv2.BORDER_REFLECT)

    sw = box(weight) + np.float32(_EPS)
    wi = weight * guide
    mean_i = box(wi) / sw
    mean_p = box(weight * src) / sw
    cov = box(wi * src) / sw - mean_i * mean_p
    var = box(wi * guide) / sw - mean_i * mean_i
    a = cov / (np.maximum(var, 0.0) + np.float32(eps))
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def fill_weak(values: np.ndarray, confidence: np.ndarray, guide: np.ndarray, sigma: float) -> np.ndarray:
    """Replace weak (low-confidence) values by their surroundings', edge-aware; strong ones barely change.

    Args:
        values: HxW float32 peak positions (diopters or frame index).
        confidence: HxW float32 in [0, 1].
        guide: HxW float32 all-in-focus gray image in [0, 1].
        sigma: scale of the fill in pixels (the normalised convolution's sigma; the guided filter's radius is
            twice it). Values beyond the image size act as the image size.

    Returns:
        HxW float32, within the range of ``values``.
    """
    h, w = values.shape
    sigma = float(min(max(sigma, 0.5), 2.0 * max(h, w)))
    weight = confidence.astype(np.float32)
    density = gaussian_blur(weight, sigma)
    local = gaussian_blur(values * weight, sigma) / (density + np.float32(_EPS))
    sparse = density < _FILL_DENSITY
    if sparse.any():  # regions too large for the Gaussian: fill them from their borders, coarse to fine
        t = np.clip(density * (1.0 / _FILL_DENSITY), 0.0, 1.0)
        local = t * local + (1.0 - t) * push_pull(values, weight)
    out = guided_filter(guide, local, weight + np.float32(_GUIDED_FLOOR), round(2 * sigma))
    return np.clip(out, float(values.min()), float(values.max()))


def peak_to_depth(peak: np.ndarray, distances_m: Sequence[float] | None) -> tuple[np.ndarray, str]:
    """Axis position to depth: metres from diopters, or 1-based frame index."""
    if distances_m is None:
        return (peak + 1.0).astype(np.float32), "frame_index"
    return (1.0 / np.maximum(peak, _EPS)).astype(np.float32), "m"
