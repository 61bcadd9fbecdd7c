"""Focus measures: how sharp each pixel's neighbourhood is in one frame.

The classical path works frame by frame on 2-D float32 gray images with OpenCV (fast on CPU, and it lets a stack
be streamed one frame at a time). Every measure is a local energy averaged over a ``window x window`` box, so its
units are (intensity / pixel)^2 and the values of different frames of a stack are directly comparable.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MEASURES", "auto_window", "focus_measure", "to_gray"]

MEASURES = ("laplacian", "tenengrad", "variance")


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luminance (Rec. 601 weights) of an HxWx3 RGB float32 image; HxW float32."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def auto_window(height: int, width: int) -> int:
    """Default window: about 1/200 of the short side, odd, at least 5 pixels."""
    w = max(5, round(min(height, width) / 200))
    return w | 1


def focus_measure(gray: np.ndarray, method: str = "laplacian", window: int = 9) -> np.ndarray:
    """Local focus energy of one frame.

    Args:
        gray: HxW float32 image.
        method: ``laplacian`` (squared 3x3 Laplacian, the "Laplacian energy"), ``tenengrad`` (squared Sobel
            gradient magnitude) or ``variance`` (local gray-level variance).
        window: side of the averaging box in pixels (odd).

    Returns:
        HxW float32, >= 0.
    """
    ksize = (window, window)
    if method == "laplacian":
        e = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
        e = cv2.multiply(e, e)
    elif method == "tenengrad":
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        e = cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))
    elif method == "variance":
        mean = cv2.boxFilter(gray, cv2.CV_32F, ksize, borderType=cv2.BORDER_REFLECT)
        sq = cv2.boxFilter(cv2.multiply(gray, gray), cv2.CV_32F, ksize, borderType=cv2.BORDER_REFLECT)
        e = cv2.subtract(sq, cv2.multiply(mean, mean))
        return np.maximum(e, 0.0, out=e)
    else:
        raise ValueError(f"unknown focus measure {method!r}; use one of {', '.join(MEASURES)}")
    e = cv2.boxFilter(e, cv2.CV_32F, ksize, borderType=cv2.BORDER_REFLECT)
    return np.maximum(e, 0.0, out=e)  # the running-sum box filter can round to tiny negatives
