"""Tiny misaligned stacks with known transforms for the align tests."""

from __future__ import annotations

import math

import cv2
import numpy as np

from tests import synthetic


def motion(model: str, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """A 3x3 frame -> canvas map for frame ``k`` (centred), of the given motion model."""
    t = k / max(1, n - 1)
    m = np.eye(3)
    m[:2, 2] = rng.uniform(-4, 4, 2)
    if model in ("similarity", "affine", "homography"):
        scale, theta = 1.0 + 0.03 * t, math.radians(rng.uniform(-0.5, 0.5))
        m[:2, :2] = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) / scale
    if model in ("affine", "homography"):
        m[:2, :2] += rng.uniform(-0.01, 0.01, (2, 2))
    if model == "homography":
        m[2, :2] = rng.uniform(-3e-5, 3e-5, 2)
    return m


def misaligned_stack(n: int = 5, h: int = 240, w: int = 320, model: str = "similarity", seed: int = 0,
                     gains: np.ndarray | None = None, offsets: np.ndarray | None = None, noise: float = 0.0
                     ) -> tuple[np.ndarray, list[np.ndarray], int]:
    """Frames (N, H, W, 3) in [0, 1] of a textured plane under known motions, with a per-frame blur.

    Returns:
        ``(frames, true frame -> reference matrices, reference index)``; the reference is the middle frame.
    """
    rng = np.random.default_rng(seed)
    ch, cw = int(h * 1.25), int(w * 1.25)
    # fine texture plus large smooth shapes, as real scenes have (the photometric fit lives on the latter)
    blobs = cv2.GaussianBlur(rng.standard_normal((ch, cw, 3)).astype(np.float32), (0, 0), ch / 12)
    blobs = (blobs - blobs.min()) / (blobs.max() - blobs.min())
    canvas = 0.5 * synthetic.texture(ch, cw, seed=seed) + 0.4 * blobs + 0.05
    maps, frames = [], []
    for k in range(n):
        m = motion(model, k, n, rng)
        centre = np.array([(w - 1) / 2, (h - 1) / 2])
        m[:2, 2] += np.array([(cw - 1) / 2, (ch - 1) / 2]) - m[:2, :2] @ centre  # frame centre -> canvas centre
        sigma = 0.6 + 1.2 * abs(k - (n - 1) / 2) / max(1, n - 1)  # defocus grows away from the middle frame
        src = cv2.GaussianBlur(canvas, (0, 0), sigma)
        frame = cv2.warpPerspective(src, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        if gains is not None:
            frame = frame * gains[k] + offsets[k]
        if noise:
            frame = frame + rng.normal(0, noise, frame.shape)
        frames.append(np.clip(frame, 0, 1).astype(np.float32))
        maps.append(m)
    ref = (n - 1) // 2
    return np.stack(frames), [np.linalg.inv(maps[ref]) @ m for m in maps], ref


def corner_error(estimated: np.ndarray, truth: np.ndarray, h: int, w: int) -> float:
    """Mean distance (px) between where the two maps send the frame's corners."""
    c = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T
    e, t = estimated @ c, truth @ c
    return float(np.linalg.norm(e[:2] / e[2] - t[:2] / t[2], axis=0).mean())


def breathing_stack(n: int = 8, h: int = 120, w: int = 160, step: float = 0.004):
    """A slanted-plane stack whose frames are magnified by ``1 + step`` per frame about the centre."""
    frames, depth, focus = synthetic.slanted_plane(h=h, w=w, n=n)
    out = []
    for k, f in enumerate(frames):
        s = (1 + step) ** (k - n // 2)
        m = np.array([[s, 0, (1 - s) * (w - 1) / 2], [0, s, (1 - s) * (h - 1) / 2]], np.float32)
        out.append(cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    return np.stack(out), depth, focus
