"""The textbook depth-from-focus baseline every benchmark run shows next to the classic method.

Per frame: gray image (Rec. 601), Gaussian pre-smoothing with sigma 1 px, squared 3x3 Laplacian, averaged over a 9x9
box (the "Laplacian energy" of Nayar & Nakagawa's sum-modified-Laplacian family). Per pixel: the frame of largest
energy, refined by the vertex of the parabola through it and its two neighbours, with frame positions in diopters
(1 / focus distance), where defocus blur is linear. Peaks on the first or last frame are not refined. Streaming:
memory does not grow with the number of frames.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

__all__ = ["TEXTBOOK_SIGMA", "TEXTBOOK_WINDOW", "textbook_depth", "textbook_measure", "textbook_predictor"]

TEXTBOOK_SIGMA = 1.0  # Gaussian pre-smoothing (px)
TEXTBOOK_WINDOW = 9  # averaging box (px)


def textbook_measure(rgb: np.ndarray) -> np.ndarray:
    """Laplacian energy of one frame.

    Shape:
        rgb: ``(H, W, 3)`` float32 in [0, 1]; returns ``(H, W)`` float32.
    """
    gray = cv2.cvtColor(np.ascontiguousarray(rgb, np.float32), cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray, (0, 0), TEXTBOOK_SIGMA, borderType=cv2.BORDER_REFLECT)
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    return cv2.boxFilter(lap * lap, cv2.CV_32F, (TEXTBOOK_WINDOW, TEXTBOOK_WINDOW), borderType=cv2.BORDER_REFLECT)


def textbook_depth(frames: Iterable[np.ndarray], focus_distances_m: list[float]) -> np.ndarray:
    """Depth (metres) by the textbook method.

    Args:
        frames: the frames near to far, each ``(H, W, 3)`` float32 in [0, 1] (consumed one at a time).
        focus_distances_m: focus distance of each frame (increasing).

    Shape:
        returns ``(H, W)`` float32 metres.
    """
    x = 1.0 / np.asarray(focus_distances_m, np.float64)  # diopters, decreasing
    n = len(x)
    best = index = prev = nxt = last = None
    for i, frame in enumerate(frames):
        m = textbook_measure(frame)
        if i == 0:
            best, index, prev, nxt = m.copy(), np.zeros(m.shape, np.int32), m.copy(), m.copy()
        else:
            nxt = np.where(index == i - 1, m, nxt)  # right neighbour of pixels whose best is the previous frame
            better = m > best
            prev = np.where(better, last, prev)
            nxt = np.where(better, m, nxt)
            index = np.where(better, i, index)
            best = np.where(better, m, best)
        last = m
    if best is None:
        raise ValueError("no frames")
    x1 = x[index]
    x0, x2 = x[np.maximum(index - 1, 0)], x[np.minimum(index + 1, n - 1)]
    y0, y1, y2 = prev.astype(np.float64), best.astype(np.float64), nxt.astype(np.float64)
    num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
    den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
    ok = (index > 0) & (index < n - 1) & (den != 0)
    vertex = x1 - 0.5 * num / np.where(ok, den, 1.0)
    peak = np.clip(np.where(ok, vertex, x1), np.minimum(x0, x2), np.maximum(x0, x2))
    return (1.0 / np.maximum(peak, 1e-9)).astype(np.float32)


def textbook_predictor(align: str = "auto"):
    """The textbook method as an ``evaluation.evaluate`` predictor: ``(frames (N, 3, H, W), focus (N,)) -> (H, W)``.

    It sees the frames ``focal predict`` would give a method (``align``: ``auto`` aligns them when the quick check
    finds them moving, as on ``f2-n10-breathing``), so a comparison is of the depth methods alone.
    """
    import torch

    from focalcli.io.stack import FocalStack
    from focalcli.predict.run import align_for_prediction

    def run(frames: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
        stack, record = align_for_prediction(FocalStack(frames=frames, focus_distances_m=focus), align)
        if record["applied"]:
            frames = stack.to_focal_stack().frames
        images = (f.permute(1, 2, 0).float().numpy() for f in frames)  # (H, W, 3) each
        return torch.from_numpy(textbook_depth(images, focus.tolist()))

    return run
