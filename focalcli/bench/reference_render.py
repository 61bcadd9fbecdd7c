"""A reference thin-lens renderer for validation stacks, independent of the training renderer.

``focalcli.optics.defocus`` (torch) renders the training data. Validation stacks made by that same code would share
its approximations, so a model could score well on them for the wrong reasons. This module renders "like real use"
with a separate implementation (numpy + OpenCV, no torch) and different choices where the physics leaves room:

- Linear light: sRGB is decoded to linear, blurred, then encoded and quantised to 8 bit like a camera JPEG/PNG.
- Defocus: thin-lens circle of confusion per pixel, ``c = A f / (s - f) * |d - s| / d`` with ``A = f / N``, in pixels
  (divided by the pixel pitch). Its *signed* radius (negative in front of the focus plane, positive behind) is
  monotonic in depth, so it both orders and blurs the scene.
- Layers: the signed radius is discretised into depth-sorted layers with hard assignment and a fine step (at most
  ``layer_step_px`` of radius between layers, at most ``max_layers`` layers). Each layer's premultiplied colour and
  its alpha are blurred by the layer's PSF (``cv2.filter2D``, which switches to the DFT for large kernels), then
  composited back to front with "over" and normalised by the accumulated alpha, so that background revealed at a
  blurred occluder's rim is neither black nor haloed.
- PSF: a lens-like disk, anti-aliased by supersampling the pixel area, with mild spherical aberration: the rim is
  brighter behind the focus plane and the centre brighter in front of it (the asymmetry real lenses show).
- Sensor noise in linear light: Poisson-Gaussian, ``x' = shot * Poisson(x / shot) + Normal(0, read^2)``, so the
  variance is ``shot * x + read^2``.

Depth holes (0) are filled with the nearest valid depth for rendering only; the ground truth keeps them invalid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from focalcli.io.depth import valid_depth

__all__ = [
    "DESCRIPTION",
    "Optics",
    "RenderOptions",
    "add_sensor_noise",
    "coc_diameter_px",
    "fill_depth_holes",
    "lens_psf",
    "linear_to_srgb",
    "render_frame",
    "render_stack",
    "srgb_to_linear",
]

DESCRIPTION = ("focalcli.bench.reference_render: numpy/OpenCV thin-lens renderer, linear light, depth-sorted layers "
               "(hard assignment, <= 0.5 px CoC radius apart, <= 96 layers), supersampled disk PSF with spherical "
               "aberration, premultiplied over-compositing normalised by alpha, Poisson-Gaussian noise, sRGB 8 bit")


@dataclass(frozen=True)
class Optics:
    """Thin-lens camera of a rendered stack."""

    focal_length_mm: float  # f
    f_number: float  # N; aperture diameter A = f / N
    pixel_pitch_um: float  # sensor pixel size at the rendered image's resolution


@dataclass(frozen=True)
class RenderOptions:
    """How finely to render."""

    layer_step_px: float = 0.5  # largest step of CoC radius (px) between neighbouring layers
    max_layers: int = 96  # cap on the number of layers (the step grows beyond it)
    aberration: float = 0.25  # spherical aberration: relative rim-versus-centre brightness of the PSF (0 = flat disk)
    supersample: int = 8  # PSF samples per pixel side for the anti-aliased edge


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1), float32."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] (clipped) to sRGB encoding, float32."""
    x = np.clip(np.asarray(x, np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def fill_depth_holes(depth: np.ndarray) -> np.ndarray:
    """Replace invalid depth (<= 0 or not finite) by the nearest valid pixel's depth (for rendering only).

    Shape:
        depth: ``(H, W)`` metres; returns the same shape, float32, all > 0.

    Raises:
        ValueError: no valid pixel at all.
    """
    depth = np.asarray(depth, np.float32)
    valid = valid_depth(depth)
    if valid.all():
        return depth.copy()
    if not valid.any():
        raise ValueError("the depth map has no valid pixel")
    # every invalid pixel gets the label of its nearest valid pixel; map labels back to those pixels' depths
    _, labels = cv2.distanceTransformWithLabels((~valid).astype(np.uint8), cv2.DIST_L2, 5,
                                                labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(int(labels.max()) + 1, np.float32)
    lut[labels[valid]] = depth[valid]
    return lut[labels]


def coc_diameter_px(depth_m: np.ndarray, focus_m: float, optics: Optics) -> np.ndarray:
    """Signed thin-lens circle-of-confusion diameter in pixels: negative in front of focus, positive behind.

    ``c = A f / (s - f) * (d - s) / d`` with ``A = f / N``, divided by the pixel pitch.

    Shape:
        depth_m: any shape, metres > 0; returns the same shape, float32.
    """
    f = optics.focal_length_mm * 1e-3
    if focus_m <= f:
        raise ValueError(f"focus distance {focus_m} m must exceed the focal length {f} m")
    aperture = f / optics.f_number
    d = np.asarray(depth_m, np.float64)
    c = aperture * f / (focus_m - f) * (d - focus_m) / d
    return (c / (optics.pixel_pitch_um * 1e-6)).astype(np.float32)


def lens_psf(radius_px: float, aberration: float = 0.25, supersample: int = 8) -> np.ndarray:
    """Point-spread function of a defocused lens: an anti-aliased disk with mild spherical aberration.

    Args:
        radius_px: signed CoC radius in pixels (negative: in front of the focus plane).
        aberration: brightness tilt across the disk; behind focus the rim is brighter, in front the centre.
        supersample: samples per pixel side used to integrate the disk over each pixel's area.

    Returns:
        ``(K, K)`` float32 kernel summing to 1, K odd (1x1 for a radius under half a pixel).
    """
    r = abs(float(radius_px))
    if r < 0.5:
        return np.ones((1, 1), np.float32)
    half = int(math.ceil(r + 0.5))
    k = 2 * half + 1
    s = int(supersample)
    offsets = (np.arange(s, dtype=np.float64) + 0.5) / s - 0.5  # sub-pixel sample positions
    coords = (np.arange(k, dtype=np.float64)[:, None] - half + offsets[None, :]).ravel()  # (K * s,)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")  # (K * s, K * s)
    rho2 = (xx * xx + yy * yy) / (r * r)
    sign = 1.0 if radius_px > 0 else -1.0
    weight = np.where(rho2 <= 1.0, 1.0 + sign * aberration * (2.0 * rho2 - 1.0), 0.0)
    kernel = weight.reshape(k, s, k, s).sum(axis=(1, 3))  # (K, K): integrate each pixel's samples
    return (kernel / kernel.sum()).astype(np.float32)


def render_frame(linear: np.ndarray, depth_filled: np.ndarray, focus_m: float, optics: Optics,
                 options: RenderOptions = RenderOptions()) -> np.ndarray:
    """Render one frame focused at ``focus_m`` (noise-free, linear light).

    Args:
        linear: linear-light RGB in [0, 1].
        depth_filled: metres, every pixel valid (see ``fill_depth_holes``).
        focus_m: focus distance in metres.
        optics: the camera.
        options: layering and PSF options.

    Shape:
        linear: ``(H, W, 3)``; depth_filled: ``(H, W)``; returns ``(H, W, 3)`` float32.
    """
    h, w = depth_filled.shape
    radius = 0.5 * coc_diameter_px(depth_filled, focus_m, optics)  # (H, W) signed CoC radius, px
    lo, hi = float(radius.min()), float(radius.max())
    n = int(min(options.max_layers, max(1, math.ceil((hi - lo) / options.layer_step_px) + 1)))
    step = (hi - lo) / (n - 1) if n > 1 else 1.0
    index = np.rint((radius - lo) / step).astype(np.int32) if n > 1 else np.zeros((h, w), np.int32)
    pad = int(math.ceil(max(abs(lo), abs(hi)) + 0.5)) + 1
    # reflected margins stand for the scene beyond the frame; they are blurred like the rest, then cut away
    idx = cv2.copyMakeBorder(index, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)  # (H + 2p, W + 2p)
    rgb = cv2.copyMakeBorder(np.ascontiguousarray(linear, np.float32), pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    hp, wp = idx.shape
    colour = np.zeros((hp, wp, 3), np.float32)
    alpha = np.zeros((hp, wp), np.float32)
    for k in range(n - 1, -1, -1):  # largest signed radius = farthest: back to front
        mask = idx == k
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            continue
        psf = lens_psf(lo + k * step, options.aberration, options.supersample)
        m = psf.shape[0] // 2
        y0, y1 = max(0, rows[0] - m), min(hp, rows[-1] + m + 1)
        x0, x1 = max(0, cols[0] - m), min(wp, cols[-1] + m + 1)
        a = mask[y0:y1, x0:x1].astype(np.float32)
        layer = np.dstack([rgb[y0:y1, x0:x1] * a[..., None], a])  # (h', w', 4) premultiplied colour + alpha
        if m:
            layer = cv2.filter2D(layer, -1, psf, borderType=cv2.BORDER_CONSTANT)  # symmetric PSF: corr = conv
        la = layer[..., 3]
        keep = 1.0 - la
        colour[y0:y1, x0:x1] = colour[y0:y1, x0:x1] * keep[..., None] + layer[..., :3]
        alpha[y0:y1, x0:x1] = alpha[y0:y1, x0:x1] * keep + la
    out = colour[pad : pad + h, pad : pad + w] / np.maximum(alpha[pad : pad + h, pad : pad + w], 1e-6)[..., None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def add_sensor_noise(linear: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian sensor noise in linear light: variance ``shot * x + read^2``; clipped to [0, 1]."""
    x = np.clip(np.asarray(linear, np.float64), 0.0, None)
    if shot > 0:
        x = rng.poisson(x / shot) * shot
    if read > 0:
        x = x + rng.normal(0.0, read, size=x.shape)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def render_stack(srgb: np.ndarray, depth_m: np.ndarray, focus_m: list[float], optics: Optics, *, shot: float,
                 read: float, rng: np.random.Generator, options: RenderOptions = RenderOptions(),
                 gains: list[float] | None = None, warps: list[np.ndarray | None] | None = None) -> np.ndarray:
    """Render a noisy 8-bit focal stack from an all-in-focus sRGB image and its depth.

    Args:
        srgb: all-in-focus sRGB image in [0, 1].
        depth_m: metres, 0 = invalid (filled for rendering).
        focus_m: focus distance of each frame, metres.
        optics: the camera.
        shot, read: sensor noise (see ``add_sensor_noise``).
        rng: draws the noise.
        options: layering and PSF options.
        gains: exposure of each frame in linear light (1 = as the source; a camera's exposure drift), before the
            noise; None = all 1.
        warps: a 2x3 affine matrix per frame (or None for none), mapping the source's pixel grid to the frame's:
            focus breathing (a magnification about the centre) and camera shake, applied to the optical image
            (bicubic, reflected borders) before the exposure and the noise; None = no frame moves.

    Shape:
        srgb: ``(H, W, 3)``; depth_m: ``(H, W)``; returns ``(N, H, W, 3)`` uint8 sRGB.
    """
    linear = srgb_to_linear(srgb)
    filled = fill_depth_holes(depth_m)
    frames = []
    for k, s in enumerate(focus_m):
        x = render_frame(linear, filled, float(s), optics, options)
        if warps is not None and warps[k] is not None:
            h, w = x.shape[:2]
            x = np.clip(cv2.warpAffine(x, np.asarray(warps[k], np.float64), (w, h), flags=cv2.INTER_CUBIC,
                                       borderMode=cv2.BORDER_REFLECT), 0.0, 1.0)
        if gains is not None:
            x = np.clip(x * np.float32(gains[k]), 0.0, 1.0)
        x = add_sensor_noise(x, shot, read, rng)
        frames.append(np.rint(linear_to_srgb(x) * 255.0).astype(np.uint8))
    return np.stack(frames)  # (N, H, W, 3)
