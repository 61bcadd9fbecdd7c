"""The classical pipeline in one pass over the frames: decode, focus measure, peak tracking, pyramid fusion.

Decoding the next frame runs in a background thread (OpenCV releases the GIL) while the current one is processed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from focalcli.focus.depth import DepthResult, PeakTracker, peak_to_depth, positions_from_distances, smooth_by_confidence
from focalcli.focus.fuse import PyramidFuser
from focalcli.focus.measures import MEASURES, auto_window, focus_measure, to_gray
from focalcli.io.images import to_float
from focalcli.io.stack import FocalStack, StackFolder

__all__ = ["all_in_focus", "depth_from_focus"]

Progress = Callable[[int, int], None]  # (frames done, total)


def _frames(stack: FocalStack | StackFolder) -> Iterator[np.ndarray]:
    """HxWx3 frames near to far: float32 from memory, native uint8/uint16 from disk (converted by the consumer,
    outside the decoding thread's critical path)."""
    if isinstance(stack, FocalStack):
        for f in stack.frames:
            yield np.ascontiguousarray(f.permute(1, 2, 0).float().cpu().numpy())
        return
    it = stack.iter_frames(native=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        nxt = pool.submit(next, it, None)
        while (item := nxt.result()) is not None:
            nxt = pool.submit(next, it, None)
            yield item[1]


def _meta(stack: FocalStack | StackFolder) -> tuple[int, int, int, list[float] | None]:
    if isinstance(stack, FocalStack):
        h, w = stack.size
        fd = stack.focus_distances_m
        return len(stack), h, w, (fd.tolist() if fd is not None else None)
    fd = stack.focus_distances_m
    return len(stack), stack.info.height, stack.info.width, (list(fd) if fd is not None else None)


def _run(stack, *, measure: str, window: int | None, smooth: float, depth: bool, aif: bool,
         progress: Progress | None) -> DepthResult:
    if measure not in MEASURES:
        raise ValueError(f"unknown focus measure {measure!r}; use one of {', '.join(MEASURES)}")
    n, h, w, distances = _meta(stack)
    window = window or auto_window(h, w)
    tracker = PeakTracker()
    fuser = PyramidFuser(h, w) if aif else None
    for i, frame in enumerate(_frames(stack)):
        if fuser is None and frame.dtype != np.float32:  # depth only: scale the gray image, not three channels
            gray = to_gray(frame.astype(np.float32))
            gray *= 1.0 / np.iinfo(frame.dtype).max
        else:
            frame = to_float(frame)
            gray = to_gray(frame)
        m = focus_measure(gray, measure, window)
        if depth:
            tracker.update(m)
        if fuser is not None:
            fuser.update(frame, m)
        if progress is not None:
            progress(i + 1, n)
    fused = fuser.result() if fuser is not None else None
    if not depth:
        return DepthResult(depth=np.zeros((h, w), np.float32), confidence=np.zeros((h, w), np.float32),
                           units="m" if distances else "frame_index", aif=fused)
    positions = positions_from_distances(distances, n)
    peak, confidence = tracker.result(positions)
    peak = smooth_by_confidence(peak, confidence, smooth)
    d, units = peak_to_depth(peak, distances)
    return DepthResult(depth=d, confidence=confidence, units=units, aif=fused)


def depth_from_focus(stack: FocalStack | StackFolder, *, measure: str = "laplacian", window: int | None = None,
                     smooth: float = 0.0, aif: bool = False, progress: Progress | None = None) -> DepthResult:
    """Depth (and optionally the all-in-focus image) of a stack by the classical method.

    Args:
        stack: a ``FocalStack`` (in memory) or a ``StackFolder`` (streamed from disk, one frame at a time).
        measure: focus measure, one of ``focalcli.focus.measures.MEASURES``.
        window: focus-measure window in pixels; None picks one from the image size.
        smooth: sigma in pixels of a confidence-weighted smoothing of the peak map (0 = off).
        aif: also fuse the all-in-focus image (same pass over the frames).
        progress: called with ``(frames done, total)`` after each frame.

    Returns:
        ``DepthResult`` with HxW maps the size of the frames: metres when the stack has focus distances, else
        1-based frame-index units.
    """
    return _run(stack, measure=measure, window=window, smooth=smooth, depth=True, aif=aif, progress=progress)


def all_in_focus(stack: FocalStack | StackFolder, *, measure: str = "laplacian", window: int | None = None,
                 progress: Progress | None = None) -> np.ndarray:
    """All-in-focus image of a stack by Laplacian-pyramid fusion: HxWx3 float32 RGB in [0, 1]."""
    return _run(stack, measure=measure, window=window, smooth=0.0, depth=False, aif=True, progress=progress).aif
