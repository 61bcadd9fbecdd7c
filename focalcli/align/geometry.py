"""3x3 maps between pixel grids: resizing, the closest similarity to an affine warp, and magnification.

Coordinates are OpenCV pixel coordinates (pixel centres at integers); sizes are ``(H, W)``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["magnification", "resize_map", "to_similarity"]


def resize_map(src: tuple[int, ...], dst: tuple[int, ...]) -> np.ndarray:
    """3x3 map from pixel coordinates of an image of shape ``src`` to those of its resized copy of shape ``dst``.

    Matches ``cv2.resize``: per axis, ``x_dst = (x_src + 0.5) * f - 0.5`` with ``f = dst / src``.
    """
    fx, fy = dst[1] / src[1], dst[0] / src[0]
    return np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])


def to_similarity(w: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The similarity (scale, rotation, translation) closest to an affine 3x3 warp ``w`` of an ``(H, W)`` image.

    The linear part is the least-squares projection of ``w``'s onto ``[[p, -q], [q, p]]`` (``p`` the mean of the
    diagonal, ``q`` half the difference of the off-diagonal terms), and the translation is chosen so that the image
    centre maps where ``w`` maps it. A similarity comes back unchanged.
    """
    a, b, c, d = w[0, 0], w[0, 1], w[1, 0], w[1, 1]
    p, q = 0.5 * (a + d), 0.5 * (c - b)
    s = np.array([[p, -q, 0.0], [q, p, 0.0], [0.0, 0.0, 1.0]])
    centre = np.array([(size[1] - 1) / 2, (size[0] - 1) / 2, 1.0])
    s[:2, 2] = (w @ centre)[:2] - (s @ centre)[:2]
    return s


def magnification(m: np.ndarray, size: tuple[int, int]) -> float:
    """How much larger a frame shows the scene than the reference does, from its frame -> reference map ``m``.

    ``1 / sqrt(|det J|)`` with ``J`` the Jacobian of ``m`` at the centre of the ``(H, W)`` image (1 = same scale;
    1.02 = the frame shows the scene 2 % larger: focus breathing). Exact for similarities; for a homography it is the
    local scale at the centre.
    """
    cx, cy = (size[1] - 1) / 2, (size[0] - 1) / 2
    den = m[2, 0] * cx + m[2, 1] * cy + m[2, 2]
    jac = (m[:2, :2] - np.outer((m[:2] @ [cx, cy, 1.0]) / den, m[2, :2])) / den
    return float(1.0 / math.sqrt(abs(np.linalg.det(jac))))
