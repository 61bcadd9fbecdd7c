"""Tiny synthetic focal stacks with known depth for tests (a simple depth-dependent Gaussian blur, not the renderer).

Blur sigma in pixels is ``gain * |1/s - 1/d|``: linear in diopters, as for a thin lens. Per pixel the frame is
interpolated between copies of the texture blurred at a ladder of sigmas (a "gather" blur; fine for smooth depth).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from focalcli.io.stack import Camera, FocalStack


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Band-limited random RGB texture in [0.1, 0.9] with texture at every scale the tests look at."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((0.7, 0.5), (2.0, 0.35), (6.0, 0.25)):
        n = rng.standard_normal((h, w, 3)).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), sigma)
        img += amp * n / (n.std() + 1e-8)
    img = (img - img.min()) / (img.max() - img.min())
    return 0.1 + 0.8 * img


def render(sharp: np.ndarray, depth: np.ndarray, focus: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """Frames (N, H, W, 3) of ``sharp`` with blur sigma = gain * |1/s - 1/depth| px."""
    ladder = np.linspace(0.0, gain * np.abs(1 / focus[:, None, None] - 1 / depth[None]).max() + 1e-3, 24)
    blurred = np.stack([sharp if s < 0.05 else cv2.GaussianBlur(sharp, (0, 0), s) for s in ladder])
    frames = []
    for s in focus:
        sigma = gain * np.abs(1.0 / s - 1.0 / depth)
        pos = np.interp(sigma, ladder, np.arange(len(ladder)))
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, len(ladder) - 1)
        t = (pos - lo)[..., None].astype(np.float32)
        rows, cols = np.indices(depth.shape)
        frames.append((1 - t) * blurred[lo, rows, cols] + t * blurred[hi, rows, cols])
    return np.stack(frames).astype(np.float32)


def slanted_plane(h: int = 96, w: int = 128, n: int = 10, near: float = 0.5, far: float = 1.0):
    """A textured plane whose depth goes from ``near`` (left) to ``far`` (right), focus uniform in diopters."""
    depth = np.repeat(np.linspace(near, far, w, dtype=np.float32)[None], h, axis=0)
    focus = 1.0 / np.linspace(1 / near + 0.1, 1 / far - 0.1, n)
    return render(texture(h, w), depth, focus), depth, focus


def step_planes(h: int = 96, w: int = 128, n: int = 8, near: float = 0.6, far: float = 1.2):
    """Two fronto-parallel planes: left half at ``near``, right half at ``far``."""
    depth = np.full((h, w), far, np.float32)
    depth[:, : w // 2] = near
    focus = 1.0 / np.linspace(1 / near + 0.2, 1 / far - 0.2, n)
    return render(texture(h, w, seed=1), depth, focus), depth, focus


def as_focal_stack(frames: np.ndarray, focus: np.ndarray | None, camera: Camera | None = None) -> FocalStack:
    """(N, H, W, 3) numpy frames to a FocalStack (near to far); the camera defaults to 50 mm F/2, pitch unknown."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    fd = torch.tensor(focus, dtype=torch.float32) if focus is not None else None
    return FocalStack(frames=t, focus_distances_m=fd, camera=camera or Camera(focal_length_mm=50, f_number=2))
