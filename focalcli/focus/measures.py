"""Focus measures: how sharp each pixel's neighbourhood is in one frame.

The classical path works frame by frame on 2-D float32 gray images with OpenCV (fast on CPU, and it lets a stack
be streamed one frame at a time). Every measure is a local energy averaged over a window, so its units are
(intensity / pixel)^2 and the values of different frames of a stack are directly comparable.

Two layers:

- ``focus_energy``: the per-pixel energy of one frame after a Gaussian pre-smoothing (squared Laplacian, squared
  Sobel gradient, or for ``variance`` the gray level and its square). Pre-smoothing keeps sensor noise from
  dominating the finest band: its sigma is 1 px for clean images and grows with the noise level that
  ``estimate_noise`` finds (``presmooth_sigma``).
- ``windowed``: that energy averaged over a Gaussian window; ``focus_measure`` is the older box-window form that
  fusion and the tests use.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["MEASURES", "auto_window", "estimate_noise", "focus_energy", "focus_measure", "gaussian_blur",
           "presmooth_sigma", "quantile", "to_gray", "windowed"]

MEASURES = ("laplacian", "tenengrad", "variance")
_LAPLACIAN_NORM = 20.0 ** 0.5  # L2 norm of the 3x3 Laplacian kernel [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
_PERCENTILE_BIAS = 0.835  # 10th percentile of 7x7 noise energy / its mean, square-rooted (white Gaussian noise)
_CLEAN_NOISE = 0.02  # noise (gray std, [0, 1] scale) up to which 1 px of pre-smoothing suffices (measured)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Luminance (Rec. 601 weights) of an HxWx3 RGB float32 image; HxW float32."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def quantile(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile (lower value, no interpolation) of an array, by partial sorting.

    ``np.percentile`` would do, but its first call imports ``numpy.ma`` (~10-20 ms at every start).
    """
    flat = np.asarray(values).ravel()
    k = min(flat.size - 1, max(0, int(q * (flat.size - 1))))
    return float(np.partition(flat, k)[k])


def estimate_noise(gray: np.ndarray) -> float:
    """Standard deviation of the sensor noise in one gray frame ([0, 1] units), from its flattest areas.

    The finest band (3x3 Laplacian) of a noisy image is noise plus texture; its local energy over 7x7 blocks is
    lowest where there is no texture, so the 10th percentile of that energy, divided by the kernel's squared norm,
    gives the noise variance (Immerkaer's estimator, made robust to texture by the percentile; the percentile's bias
    is calibrated on white Gaussian noise).
    """
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
    e = cv2.boxFilter(cv2.multiply(lap, lap), cv2.CV_32F, (7, 7), borderType=cv2.BORDER_REFLECT)
    step = max(1, int((e.size / 40000) ** 0.5))  # ~40k samples are plenty for a percentile
    sample = e[3:-3:step, 3:-3:step] if min(e.shape) > 8 else e
    return quantile(sample, 0.1) ** 0.5 / (_LAPLACIAN_NORM * _PERCENTILE_BIAS)


def presmooth_sigma(noise: float) -> float:
    """Gaussian pre-smoothing (px) for a frame with this noise level: 1 px, more for noisy images.

    Measured on the validation stacks (``python -m focalcli.bench valset``) with extra noise added: 1 px is best up
    to a noise std of ~0.02; at 0.04, 1.4 px. Growing with the square root of the noise follows both.
    """
    return float(min(3.0, max(1.0, (max(noise, 0.0) / _CLEAN_NOISE) ** 0.5)))


def focus_energy(gray: np.ndarray, method: str = "laplacian", presmooth: float = 1.0) -> np.ndarray:
    """Per-pixel focus energy of one frame (before the window).

    Args:
        gray: HxW float32 image.
        method: one of ``MEASURES``.
        presmooth: Gaussian sigma (px) applied first; 0 = none.

    Returns:
        ``laplacian``/``tenengrad``: HxW float32 energy. ``variance``: HxWx2 float32 (gray, gray^2), whose window
        means give the local variance (see ``windowed``).
    """
    if presmooth > 0:
        gray = cv2.GaussianBlur(gray, (0, 0), presmooth, borderType=cv2.BORDER_REFLECT)
    if method == "laplacian":
        e = cv2.Laplacian(gray, cv2.CV_32F, ksize=1)
        return cv2.multiply(e, e)
    if method == "tenengrad":
        gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
        return cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))
    if method == "variance":
        return cv2.merge([gray, cv2.multiply(gray, gray)])
    raise ValueError(f"unknown focus measure {method!r}; use one of {', '.join(MEASURES)}")


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (reflected borders) whose cost does not grow with sigma: a large sigma is applied to a copy
    downsampled by ``pyrDown`` (whose own blur is accounted for), then upsampled bilinearly."""
    h, w = x.shape[:2]
    sigma = min(sigma, 2.0 * max(h, w))  # beyond that a Gaussian is a global mean anyway
    levels = 0
    small = x
    while sigma / 2 ** levels > 8 and min(small.shape[:2]) >= 16:
        small = cv2.pyrDown(small)
        levels += 1
    if levels == 0:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    done = (4**levels - 1) / 3  # variance (full-res px^2) that the pyrDown steps already applied
    rest = math.sqrt(max(sigma * sigma - done, 0.25)) / 2**levels
    small = cv2.GaussianBlur(small, (0, 0), rest, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def windowed(energy: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-window average of ``focus_energy`` (the local variance for ``variance``); HxW float32, >= 0."""
    m = gaussian_blur(energy, sigma)
    if m.ndim == 3:  # (mean, mean of squares) -> variance
        mean, sq = cv2.split(m)
        m = cv2.subtract(sq, cv2.multiply(mean, mean))
    return np.maximum(m, 0.0, out=m)


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
