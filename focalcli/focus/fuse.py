"""All-in-focus fusion by Laplacian pyramids, streamed one frame at a time.

Each frame is split into a Laplacian pyramid. At every level the fused pyramid keeps, per coefficient, the frame
whose focus measure (itself reduced to that level by a Gaussian pyramid, so coarse levels decide over larger areas)
is highest; the coarsest Gaussian level is the average of all frames. Collapsing the fused pyramid gives an image
without the seams of hard per-pixel selection and without the halos of plain weighted averaging.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["PyramidFuser", "pyramid_levels"]


def pyramid_levels(height: int, width: int, max_levels: int = 7) -> int:
    """Number of Laplacian levels so the coarsest level is at least ~16 pixels on its short side."""
    levels = 0
    short = min(height, width)
    while levels < max_levels and short >= 32:
        short //= 2
        levels += 1
    return levels


def _up(image: np.ndarray, like: np.ndarray) -> np.ndarray:
    # Any upsampler reconstructs exactly as long as the same one builds and collapses the pyramid; bilinear
    # resize is several times faster than cv2.pyrUp on float images.
    return cv2.resize(image, (like.shape[1], like.shape[0]), interpolation=cv2.INTER_LINEAR)


def _laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    pyr, g = [], image
    for _ in range(levels):
        down = cv2.pyrDown(g)
        pyr.append(cv2.subtract(g, _up(down, g)))
        g = down
    pyr.append(g)
    return pyr


def _gaussian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    pyr = [image]
    for _ in range(levels):
        pyr.append(cv2.pyrDown(pyr[-1]))
    return pyr


class PyramidFuser:
    """Streaming Laplacian-pyramid focus fusion.

    Args:
        height, width: frame size.
        levels: pyramid depth; None picks ``pyramid_levels(height, width)``.
    """

    def __init__(self, height: int, width: int, levels: int | None = None):
        self.levels = pyramid_levels(height, width) if levels is None else levels
        self.count = 0

    def update(self, image: np.ndarray, measure: np.ndarray) -> None:
        """Add one frame (HxWx3 float32) with its focus measure (HxW float32)."""
        lap = _laplacian_pyramid(image, self.levels)
        sal = _gaussian_pyramid(measure, self.levels)
        if self.count == 0:
            self.fused = [x.copy() for x in lap]
            self.salience = [s.copy() for s in sal[: self.levels]]  # level 0 is the caller's measure: keep it
            self.base = lap[-1].astype(np.float32, copy=True)
        else:
            for lvl in range(self.levels):
                better = cv2.compare(sal[lvl], self.salience[lvl], cv2.CMP_GT)  # uint8 mask, 255 = this frame
                cv2.copyTo(lap[lvl], better, self.fused[lvl])
                cv2.copyTo(sal[lvl], better, self.salience[lvl])
            self.base += lap[-1]
        self.count += 1

    def result(self) -> np.ndarray:
        """Collapse the fused pyramid: HxWx3 float32 in [0, 1]."""
        g = self.base / self.count
        for lvl in range(self.levels - 1, -1, -1):
            band = self.fused[lvl]
            g = cv2.add(_up(g, band), band)
        return np.clip(g, 0.0, 1.0)

