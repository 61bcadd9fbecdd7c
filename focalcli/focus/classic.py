"""The classical pipeline in one pass over the frames: decode, focus measure, peak tracking, pyramid fusion.

The next frames are decoded and measured in background threads (OpenCV releases the GIL) while the current one is
tracked (``_measured``).
"""

from __future__ import annotations

import math
import os
import statistics
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from focalcli.focus.depth import (
    DepthResult,
    FrameSmoother,
    PeakTracker,
    confidence_from_snr,
    curve_width,
    end_plane_shares,
    fill_weak,
    noise_floor,
    peak_to_depth,
    positions_from_distances,
)
from focalcli.focus.fuse import PyramidFuser
from focalcli.focus.measures import (
    MEASURES,
    estimate_noise,
    focus_energy,
    gaussian_blur,
    presmooth_sigma,
    to_gray,
    windowed,
)
from focalcli.io.images import to_float
from focalcli.io.stack import FrameSource

__all__ = ["ClassicScales", "all_in_focus", "blur_step_px", "blur_steps_px", "classic_scales", "depth_from_focus",
           "frame_sigmas", "frame_smoothing"]

Progress = Callable[[int, int], None]  # (frames done, total)
_DECODERS = 4  # frames decoded and measured ahead, in parallel (at most the number of cores)
_AHEAD_BYTES = 512 * 2**20  # ... while their results take at most this much memory (``_measured``)


def _measured(stack: FrameSource, start: Callable[[np.ndarray], None],
              work: Callable[[int, np.ndarray], tuple]) -> Iterator[tuple]:
    """``work(i, frame)`` of every frame, near to far, computed ahead in background threads.

    ``start`` sees the first frame before any work starts (in this thread: it sets the scales that ``work`` uses).
    Frames come in their native type (float32 from memory or from a ``WarpedStack``, uint8/uint16 from files), as
    recorded when the stack can hand them over unwarped (``_resampled``). Decoding and OpenCV's filters release the
    GIL, so the next frames are decoded and measured on other cores while the caller tracks the current one. At
    most ``_DECODERS`` results (one per core) wait ahead, fewer when they would take more than ``_AHEAD_BYTES``, but
    two at least (one on a single core).
    """
    n = len(stack)
    read = stack.unwarped if _resampled(stack) else (lambda i: stack.frame(i, True))
    first = read(0)
    start(first)
    h, w = stack.size
    item = h * w * 4 * 4  # float32 maps of a result: gray, small and wide windows, and the frame or the energy
    cores = os.cpu_count() or 1
    ahead = max(min(2, cores), min(_DECODERS, cores, _AHEAD_BYTES // item))
    with ThreadPoolExecutor(max_workers=ahead) as pool:
        pending = deque([pool.submit(work, 0, first)])
        first = None
        pending.extend(pool.submit(lambda i: work(i, read(i)), i) for i in range(1, min(ahead, n)))
        for k in range(n):
            result = pending.popleft().result()
            if k + ahead < n:
                pending.append(pool.submit(lambda i: work(i, read(i)), k + ahead))
            yield result


def _gray(frame: np.ndarray, rgb: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """``(RGB float32 in [0, 1] or None, gray float32 in [0, 1])`` of a frame in its native type: with ``rgb`` False
    (depth only) the gray image is made in the native type and one channel is scaled instead of three (rounding
    8-bit gray to whole levels adds noise of std 0.3 level, far below a camera's)."""
    if not rgb and frame.dtype != np.float32:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        gray *= 1.0 / np.iinfo(frame.dtype).max
        return None, gray
    frame = to_float(frame)
    return (frame if rgb else None), to_gray(frame)


def _resampled(stack: FrameSource) -> bool:
    """Whether ``stack`` warps its frames when read (``align.WarpedStack``) and can hand them over unwarped: the
    focus is then measured on the frames as recorded and only the windowed measure is resampled.

    Resampling a frame smooths its finest detail (bicubic interpolation at a fractional position), and every frame
    but the reference is resampled, so the reference would gain focus energy against its neighbours. On
    ``f2-n10-breathing`` of the validation set (1-4 % of focus breathing, 1.5 px of shake) AbsRel 0.073 -> 0.069;
    the same stacks rendered without breathing or shake score 0.068 (with ``MAGNIFICATION_POWER``).

    A frame the camera magnified (focus breathing) shows its texture larger, with less Laplacian energy; the
    windowed energy is multiplied by ``magnification ** MAGNIFICATION_POWER`` to make up for it."""
    return hasattr(stack, "unwarped") and hasattr(stack, "warp_map")


def _coverage(stack: FrameSource, i: int) -> np.ndarray | None:
    """Which pixels frame ``i`` covers (float32 HxW in {0, 1}); None when it covers all of them."""
    cover = stack.cover(i)
    return None if cover is None else cover.astype(np.float32)


REFERENCE_SHORT_SIDE = 480  # px; the default windows below are for images of this short side and scale with it
LARGE_WINDOW = 8.0  # large-window sigma (px at the reference size): enough texture even in sparse regions
SMALL_WINDOW = 0.25  # small-window sigma as a fraction of the large one: sharp depth edges where texture is dense
FILL_SIGMA = 0.01  # default --smooth, as a fraction of the short side
BLEND_SNR = 4.0  # focus-energy SNR at which the small window's peak gets half the weight
BLUR_STEP_WINDOW = 1.0  # small-window sigma of at least this many times the blur step between frames (px)
BLUR_STEP_CAP = 0.45  # ... up to this fraction of the large window (wider small windows lose depth edges)
SPARSE_DROP = 0.25  # a peak drop (``PeakTracker.drop``) above this marks a sparse stack: without optics it takes
# the widest small window, and with a curve shape (``PeakTracker.tail``) under PEAKY_TAIL its sub-frame peaks are
# stretched (``focus.depth._stretch``)
PEAKY_TAIL = 1.7  # between disk blur (1-1.5 on the validation set) and Gaussian curves (2-3)
FRAME_SMOOTH_PX = 0.6  # smoothing across frames: sigma = this / the blur step (px), in frames (``FrameSmoother``)
FRAME_SMOOTH_MAX = 2.0  # ... at most this many frames (memory holds 2 * 2 * sigma + 1 frames' maps)
FRAME_SMOOTH_MIN = 0.25  # below this sigma (frames far apart) nothing is smoothed
CURVE_WIDTH_STEP = 2.0  # without optics: blur step (px) ~ this * ``curve_width`` of the first frames
MAGNIFICATION_POWER = 1.0  # the windowed energy of a frame measured before warping (``_resampled``) times its
# magnification to this power: a scene magnified by s has s^-2..s^-4 of the Laplacian energy for a texture of one
# scale (2 is best on the tests' synthetic texture), about s^0 for a natural image's 1/f^2 spectrum. On
# f2-n10-breathing of the validation set AbsRel 0.0691 / 0.0686 / 0.0695 / 0.0715 for 0 / 1 / 2 / 3.


@dataclass(frozen=True)
class ClassicScales:
    """Pixel scales of one run of the classic method (derived from the image size, noise and options)."""

    presmooth: float  # Gaussian sigma before the focus operator (px)
    small: float  # small-window sigma (px)
    large: float  # large-window sigma (px)
    levels: int  # the large window runs on a copy downsampled this many times (2x each)
    large_rest: float  # Gaussian sigma applied at that level (px of the downsampled copy)
    fill: float  # sigma of the fill of weak pixels (px); 0 = raw per-pixel estimate
    blur_step: float | None = None  # growth of the blur diameter from one frame to the next (px); None = unknown


def classic_scales(height: int, width: int, *, noise: float, window: int | None, smooth: float | None,
                   blur_step: float | None = None) -> ClassicScales:
    """The pixel scales for an image: windows grow with the image, pre-smoothing with the noise.

    ``window`` (a box side in px, as in older versions) sets the large window to the Gaussian of the same standard
    deviation (side / sqrt(12)), and the small one to a quarter of it; ``smooth`` None picks ``FILL_SIGMA`` of the
    short side. ``blur_step`` (``blur_step_px``, None when unknown) widens the default small window to
    ``BLUR_STEP_WINDOW`` times it, up to ``BLUR_STEP_CAP`` of the large window: where the blur grows by several
    pixels from one frame to the next, a sharp edge's focus energy spreads that far into its neighbours in the next
    frames, and a small window finds the neighbours' peak in the wrong frame (the validation set's 10-frame
    scene-agnostic schedule has a 3-4 px step: AbsRel 0.070 -> 0.064; dense schedules, under 1.5 px, are unchanged).
    """
    short, long = min(height, width), max(height, width)
    scale = short / REFERENCE_SHORT_SIDE
    large = window / math.sqrt(12.0) if window else max(2.0, LARGE_WINDOW * scale)
    large = min(large, float(long))  # a wider window is the whole image anyway (and would be slow)
    small = max(1.0, SMALL_WINDOW * large)
    if blur_step and not window:
        small = max(small, min(BLUR_STEP_WINDOW * blur_step, BLUR_STEP_CAP * large))
    levels = 0
    while large / 2 ** (levels + 1) >= 1.5 and short / 2 ** (levels + 1) >= 16:
        levels += 1
    done = small * small + (4**levels - 1) / 3  # variance already applied: small window, then pyrDown steps
    rest = math.sqrt(max(large * large - done, 0.25)) / 2**levels
    fill = max(1.0, FILL_SIGMA * short) if smooth is None else min(float(smooth), 2.0 * long)
    return ClassicScales(presmooth_sigma(noise), small, large, levels, rest, fill, blur_step)


def blur_steps_px(distances_m: list[float] | None, camera) -> list[float] | None:
    """The growth of the blur-circle diameter (px) from each frame's focus plane to the next one's (N - 1 values);
    None without focus distances, focal length, f-number or pixel pitch.

    Thin lens (``focalcli.optics.thinlens``): focused at ``s``, a point at distance ``d`` blurs to a disk of
    diameter ``A f s / (s - f) |1/s - 1/d|`` on the sensor, ``A = f / N``.
    """
    f_mm, n, pitch_um = camera.focal_length_mm, camera.f_number, camera.pixel_pitch_um
    if not distances_m or len(distances_m) < 2 or not (f_mm and n and pitch_um):
        return None
    f = f_mm / 1000.0
    steps = []
    for near, far in zip(distances_m[:-1], distances_m[1:], strict=True):
        far_ = max(far, near)
        gain = (f / n) * f * far_ / (far_ - f) if far_ > f else 0.0  # blur diameter per diopter, focused at far_
        steps.append(gain * abs(1.0 / far - 1.0 / near) / (pitch_um * 1e-6))
    return steps if any(steps) else None


def blur_step_px(distances_m: list[float] | None, camera) -> float | None:
    """The median over the stack of ``blur_steps_px``; None when unknown."""
    steps = blur_steps_px(distances_m, camera)
    return statistics.median(steps) if steps else None  # not np.median: it imports numpy.ma (~10 ms)


def frame_smoothing(blur_step: float | None) -> float:
    """Sigma (frames) of the smoothing across frames for a stack whose blur grows by ``blur_step`` px per frame: 0
    (none) when unknown or when the frames are far apart, up to ``FRAME_SMOOTH_MAX`` for dense ones.

    The blur must change by about ``FRAME_SMOOTH_PX`` pixels for a focus measure to tell two planes apart; frames
    closer than that sample the same curve with independent noise. On the validation set (AbsRel): 10 frames over
    the 5th-95th depth percentiles (0.8 px step) 0.059 -> 0.054, 41 frames (0.2 px) 0.064 -> 0.053, 5 frames at
    F/2.8 over the percentiles 0.067 -> 0.063; the 10- and 5-frame schedules over 0.6-10 m (3-4 px steps) are
    unchanged.
    """
    if not blur_step:
        return 0.0
    sigma = min(FRAME_SMOOTH_PX / blur_step, FRAME_SMOOTH_MAX)
    return sigma if sigma >= FRAME_SMOOTH_MIN else 0.0


def frame_sigmas(steps: list[float] | None, n: int) -> np.ndarray | float:
    """``frame_smoothing`` of each frame from the blur steps to its neighbours (their mean), so a schedule that is
    dense in one part and sparse in another (uniform in metres, say) is smoothed only where it is dense: (N,)
    sigmas in frames, or 0 when the steps are unknown."""
    if not steps:
        return 0.0
    local = [statistics.fmean(steps[max(0, j - 1) : j + 1]) for j in range(n)]  # intervals j-1 and j
    return np.array([frame_smoothing(x) for x in local])


def _estimated_smoothing(maps: list[np.ndarray]) -> float:
    """``frame_smoothing`` for a stack of unknown optics, its blur step estimated from how sharply the focus curves
    of its first frames bend (``focus.depth.curve_width``); 0 when they cannot tell."""
    width = curve_width(maps)
    return frame_smoothing(CURVE_WIDTH_STEP * width) if width else 0.0


def _down(x: np.ndarray, levels: int) -> np.ndarray:
    for _ in range(levels):
        x = cv2.pyrDown(x)
    return x


def _covered_windowed(energy: np.ndarray, cover: np.ndarray, sigma: float) -> np.ndarray:
    """``windowed`` over the covered pixels only (normalised convolution), 0 outside them.

    A warped frame repeats its border where it does not cover the reference frame; those pixels hold no evidence
    and must not leak into the windows of their covered neighbours.

    Shape:
        ``energy`` ``(H, W)`` or ``(H, W, 2)`` (variance: mean and mean of squares), ``cover`` ``(H, W)`` float32 in
        {0, 1} -> ``(H, W)`` float32.
    """
    weight = gaussian_blur(cover, sigma)  # (H, W)
    masked = energy * (cover[..., None] if energy.ndim == 3 else cover)
    m = gaussian_blur(masked, sigma)
    norm = 1.0 / np.maximum(weight, 1e-3)
    m = m * (norm[..., None] if m.ndim == 3 else norm)
    if m.ndim == 3:  # (mean, mean of squares) -> variance
        mean, sq = cv2.split(m)
        m = cv2.subtract(sq, cv2.multiply(mean, mean))
    m = np.maximum(m, 0.0) * cover
    return m.astype(np.float32, copy=False)


def _window(energy: np.ndarray, cover: np.ndarray | None, sigma: float) -> np.ndarray:
    """``windowed`` focus energy, over the covered pixels only when the frame does not cover them all."""
    return windowed(energy, sigma) if cover is None else _covered_windowed(energy, cover, sigma)


def noise_energy(noise: float, measure: str, scales: ClassicScales) -> float:
    """The small-window focus measure of pure sensor noise of standard deviation ``noise`` (gray levels in [0, 1]):
    the measure of white noise of unit variance (a fixed 128x128 draw) times the variance."""
    unit = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    return noise * noise * float(windowed(focus_energy(unit, measure, scales.presmooth), scales.small).mean())


def _frame_window(stack: FrameSource, i: int, energy: np.ndarray, cover: np.ndarray | None, sigma: float,
                  resampled: bool) -> np.ndarray:
    """Frame ``i``'s focus energy averaged over a Gaussian window, in the stack's output grid: measured on the
    frame as recorded and then warped, exposure matched (``resampled``, see ``_resampled``; 0 where the frame does
    not reach), or over the covered pixels of the frame as read."""
    if resampled:
        factor = stack.gain(i) ** 2 * stack.magnification(i) ** MAGNIFICATION_POWER
        return stack.warp_map(i, windowed(energy, sigma)) * np.float32(factor)
    return _window(energy, cover, sigma)


def _run(stack: FrameSource, *, measure: str, window: int | None, smooth: float | None, depth: bool, aif: bool,
         progress: Progress | None) -> DepthResult:
    if measure not in MEASURES:
        raise ValueError(f"unknown focus measure {measure!r}; use one of {', '.join(MEASURES)}")
    if smooth is not None and not (math.isfinite(smooth) and smooth >= 0):
        raise ValueError(f"smooth must be a finite number >= 0, got {smooth}")
    n, (h, w), distances = len(stack), stack.size, stack.distances()
    steps = blur_steps_px(distances, stack.camera)
    step = statistics.median(steps) if steps else None
    small, large = PeakTracker(), PeakTracker()
    # smoothing across frames: from the optics when known, else estimated from the first frames
    smoother = FrameSmoother(n, (frame_sigmas(steps, n) if steps else None) if depth else 0.0, _estimated_smoothing)
    sharpest = None  # (H, W) best raw small-window measure so far, for the guide when the trackers see smoothed maps
    fuser = PyramidFuser(h, w) if aif else None
    scales = guide = at_large = None
    wide = at_wide = None  # without optics: the widest small window too, kept if the stack turns out sparse
    covered = None  # (H, W) float32: 1 where every frame so far covers the pixel (aligned stacks only)

    def track(m: np.ndarray, m_large: np.ndarray, m_wide: np.ndarray | None) -> np.ndarray:
        """Feed one (smoothed) frame's maps to the peak trackers; the mask of pixels where it is the new best."""
        nonlocal at_large, at_wide
        better = small.update(m)
        if wide is not None:
            wide.update(m_wide)
        better_large = large.update(m_large)
        if at_large is None:
            at_large = m.copy()
            at_wide = m_wide.copy() if wide is not None else None
        else:
            if scales.levels:
                better_large = cv2.resize(better_large, (w, h), interpolation=cv2.INTER_NEAREST)
            cv2.copyTo(m, better_large, at_large)  # small-window energy at the large window's best frame
            if wide is not None:
                cv2.copyTo(m_wide, better_large, at_wide)
        return better

    resampled = _resampled(stack)  # frames come as recorded: their measures are warped (``_resampled``)
    wide_sigma = 0.0

    def start(first: np.ndarray) -> None:
        """The first frame (nearest focus, mostly defocused) sets the noise level, and with it the scales."""
        nonlocal scales, wide, wide_sigma
        noise = estimate_noise(_gray(first, fuser is not None)[1])
        scales = classic_scales(h, w, noise=noise, window=window, smooth=smooth, blur_step=step)
        if fuser is not None:
            fuser.noise_energy = noise_energy(noise, measure, scales)
        wide_sigma = BLUR_STEP_CAP * scales.large
        if depth and step is None and window is None and wide_sigma > 1.25 * scales.small:
            wide = PeakTracker()

    def work(i: int, frame: np.ndarray) -> tuple:
        """Frame ``i``'s maps (in a background thread): the RGB frame for the fusion (None for depth only; in its
        native type unless warped, a quarter of the memory of float32 while it waits for the main thread), its gray
        image and its small-, large- and wide-window focus measures in the output grid, and its coverage."""
        rgb, gray = _gray(frame, fuser is not None)  # float RGB for the fusion, or None
        if rgb is not None and not resampled:
            rgb = frame  # waits for the main thread in its native type (converted there again)
        energy = focus_energy(gray, measure, scales.presmooth)
        cover = _coverage(stack, i)  # (H, W), 1 = the frame holds data here; None = everywhere
        m = _frame_window(stack, i, energy, cover, scales.small, resampled)
        if resampled:  # the guide of the fill and the fusion take the warped frame
            gray = stack.warp_map(i, gray, cv2.INTER_CUBIC) * np.float32(stack.gain(i))
            if rgb is not None:
                rgb = stack.warp(i, rgb)
        m_large = m_wide = None
        if depth:
            m_wide = _frame_window(stack, i, energy, cover, wide_sigma, resampled) if wide is not None else None
            m_large = cv2.GaussianBlur(_down(m, scales.levels), (0, 0), scales.large_rest,
                                       borderType=cv2.BORDER_REFLECT)  # (H / 2^L, W / 2^L)
            if cover is not None:  # normalise by the covered share of the large window too
                m_large /= np.maximum(cv2.GaussianBlur(_down(cover, scales.levels), (0, 0), scales.large_rest,
                                                       borderType=cv2.BORDER_REFLECT), 1e-3)
        return rgb, gray, m, m_large, m_wide, cover

    for i, (rgb, gray, m, m_large, m_wide, cover) in enumerate(_measured(stack, start, work)):
        if cover is not None:
            covered = cover if covered is None else np.minimum(covered, cover)
        if depth:
            if smoother.radius == 0:  # the trackers see this frame: their best mask picks the guide's pixels
                better = track(m, m_large, m_wide)
            else:  # they see earlier frames, smoothed: the guide follows the sharpest raw frame
                for maps in smoother.push((m, m_large, m_wide)):
                    track(*maps)
                if sharpest is None:
                    sharpest = m.copy()
                better = cv2.compare(m, sharpest, cv2.CMP_GT)
                cv2.copyTo(m, better, sharpest)
            if guide is None:
                guide = gray.copy()
            else:
                cv2.copyTo(gray, better, guide)  # all-in-focus gray: the guide of the fill
        if fuser is not None:
            fuser.update(to_float(rgb), m)
        if progress is not None:
            progress(i + 1, n)
    for maps in smoother.flush():
        track(*maps)
    sharpest = None
    fused = fuser.result() if fuser is not None else None
    fuser = None  # its pyramids are not needed any more: keep the peak memory down
    info = _resolved(measure, scales) if scales is not None else {}
    if not depth:
        return DepthResult(depth=np.zeros((h, w), np.float32), confidence=np.zeros((h, w), np.float32),
                           units="m" if distances else "frame_index", aif=fused, info=info)
    # a sparse schedule (frames far apart against the depth of field) shows in how sharply the focus curves fall
    floor = noise_floor(small.low, small.best)
    drop, tail = small.drop(floor), small.tail(floor)
    sparse = drop is not None and drop > SPARSE_DROP
    peaky = tail < PEAKY_TAIL if tail is not None else sparse  # not Gaussian: Cauchy end fits (and if sparse,
    # stretched inner peaks); a stack too short for the curve shape (under 5 frames) is taken as peaky when sparse
    info["frame_smoothing_sigma"] = round(smoother.sigma if smoother.radius else 0.0, 3)
    info["peak_drop"] = None if drop is None else round(drop, 3)
    info["peak_tail"] = None if tail is None else round(tail, 3)
    if wide is not None:  # unknown optics: the widest small window, for a sparse stack
        if sparse:
            small, at_large = wide, at_wide
            info["window_small_sigma_px"] = round(wide_sigma, 3)
        wide = at_wide = None
    positions = positions_from_distances(distances, n)
    peak = large.peak(positions, stretch=sparse and peaky, five=not sparse, cauchy_ends=peaky)
    large = None
    if scales.levels:
        peak = cv2.resize(peak, (w, h), interpolation=cv2.INTER_LINEAR)
    floor = noise_floor(small.low, small.best)
    strong = confidence_from_snr(small.best, small.low, floor, BLEND_SNR, 2.0)  # the small window's peak is usable
    confidence = confidence_from_snr(np.maximum(small.best, at_large), small.low, floor)
    # blend: the small window's peak where it is trustworthy, else the large window's (more texture)
    peak += strong * (small.peak(positions, stretch=sparse and peaky, five=not sparse, cauchy_ends=peaky) - peak)
    small = at_large = None
    invalid = covered is not None and covered < 1.0  # (H, W) bool: some frame holds no data there
    if invalid is not False:
        confidence[invalid] = 0.0  # no evidence of their own: filled from the surroundings
        info["uncovered_pixels"] = int(invalid.sum())
    shares = end_plane_shares(peak, positions, confidence)  # the scene beyond the focus range
    info["at_end_planes"] = None if shares is None else {"near": round(shares[0], 3), "far": round(shares[1], 3)}
    if scales.fill > 0:
        peak = fill_weak(peak, confidence, guide, scales.fill)
    d, units = peak_to_depth(peak, distances)
    return DepthResult(depth=d, confidence=confidence, units=units, aif=fused, info=info)


def _resolved(measure: str, scales: ClassicScales) -> dict:
    """The options the classic method used, as resolved for this image (the sidecar's record)."""
    return {"measure": measure, "presmooth_sigma_px": round(scales.presmooth, 3),
            "window_small_sigma_px": round(scales.small, 3), "window_large_sigma_px": round(scales.large, 3),
            "window": round(scales.large * math.sqrt(12.0)), "smooth": round(scales.fill, 3),
            "blur_step_px": None if scales.blur_step is None else round(scales.blur_step, 3)}


def depth_from_focus(stack: FrameSource, *, measure: str = "laplacian", window: int | None = None,
                     smooth: float | None = None, aif: bool = False, progress: Progress | None = None) -> DepthResult:
    """Depth (and optionally the all-in-focus image) of a stack by the classical method.

    Per frame: gray image, Gaussian pre-smoothing (1 px, more for noisy stacks), focus energy, averaged over a small
    and a large Gaussian window (both scale with the image: sigma 2 and 8 px at 480 px short side). Per pixel: the
    sub-frame peak of each (log-parabola in diopters), blended by the small window's confidence; then weak pixels
    are filled from their surroundings (``focus.depth.fill_weak``) unless ``smooth`` is 0.

    Args:
        stack: a ``FocalStack`` (in memory), a ``StackFolder`` (streamed from disk, one frame at a time) or any
            ``FrameSource`` (``io.stack``).
        measure: focus measure, one of ``focalcli.focus.measures.MEASURES``.
        window: large focus-measure window in pixels (a box side; the Gaussian used has the same spread); None picks
            one from the image size.
        smooth: scale in pixels of the confidence-guided, edge-aware fill of weak pixels; None = 1% of the short
            side; 0 = off (the raw per-pixel estimate).
        aif: also fuse the all-in-focus image (same pass over the frames).
        progress: called with ``(frames done, total)`` after each frame.

    Returns:
        ``DepthResult`` with HxW maps the size of the frames: metres when the stack has focus distances, else
        1-based frame-index units.

    Raises:
        ValueError: unknown measure, or ``smooth`` negative or not finite.
    """
    return _run(stack, measure=measure, window=window, smooth=smooth, depth=True, aif=aif, progress=progress)


def all_in_focus(stack: FrameSource, *, measure: str = "laplacian", window: int | None = None,
                 progress: Progress | None = None) -> np.ndarray:
    """All-in-focus image of a stack by Laplacian-pyramid fusion: HxWx3 float32 RGB in [0, 1]."""
    return _run(stack, measure=measure, window=window, smooth=0.0, depth=False, aif=True, progress=progress).aif
