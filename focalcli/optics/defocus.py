"""Depth-dependent defocus: two batched renderers (layered, gather), in linear light.

Pure torch; the device and dtype follow the inputs. Blur is parameterised per pixel by the CoC radius in pixels,
``r = gain * |q_s - q| / 2`` with ``q = 1/depth`` and ``q_s = 1/focus`` in diopters and ``gain`` the CoC diameter in
pixels per diopter (``thinlens.coc_gain(...) / pixel_pitch``). PSFs (``disk``, ``gaussian``, ``power``) are described
in ``optics.blur``; each sample of a batch may have its own family and exponent.

Renderers (both return frames of shape (B, N, C, H, W), linear light in, linear light out):
- ``layered`` (default, occlusion-aware): each sample's inverse depth is split into L layers with triangular
  (linear interpolation) weights; each layer's premultiplied colour and alpha are blurred with that layer's PSF,
  the layers are composited far to near with the "over" operator, and the colour is divided by the accumulated
  alpha (which removes the dark fringes that holes left by occluders would otherwise cause).
- ``gather``: each output pixel interpolates between copies of the image blurred at a ladder of radii, at its own
  radius. Fast and exact on smooth depth, but no occlusion: a blurred foreground does not spill over a sharp
  background.

Large kernels are applied by FFT (replicate padding, so there is no wrap-around); tiny ones by a grouped conv.
Layered blurs of radius >= 2 * ``min_coarse`` px run on a coarser pyramid level 2^k (area-downsampled layer,
radius scaled and corrected for the resampling, bilinear upsampling), which makes large defocus cheap.

The layered renderer and how it batches are in ``optics.layered``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from focalcli.optics.blur import (
    DIRECT_MAX_KERNEL,
    PSFS,
    SamplePsfs,
    blur_each,
    direct_blur,
    fft_size,
    image_spectra,
    kernel_spectra,
    psf_kernels,
    spectral_blur,
    support,
)
from focalcli.optics.layered import layer_count, render_layered

__all__ = [
    "PSFS",
    "blur_each",
    "linear_to_srgb",
    "psf_kernels",
    "render_defocus",
    "srgb_to_linear",
]


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1 transfer function)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] to sRGB encoding (values outside are clamped)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def render_defocus(
    image: torch.Tensor,
    inv_depth: torch.Tensor,
    focus_diopters: torch.Tensor,
    gain_px: torch.Tensor,
    *,
    method: str = "layered",
    psf: str | Sequence[str] = "disk",
    power: float | Sequence[float] | torch.Tensor = 8.0,
    layers: int | None = None,
    max_layers: int = 32,
    step_px: float = 1.0,
    min_coarse: float = 3.0,
) -> torch.Tensor:
    """Render a batch of focal stacks from linear-light images and their inverse depth.

    Args:
        image: linear-light colour, shape (B, C, H, W).
        inv_depth: inverse depth ``1/d`` in diopters (finite, > 0: fill holes first), shape (B, 1, H, W).
        focus_diopters: ``1/s`` of each frame, shape (B, N).
        gain_px: CoC diameter in pixels per diopter of defocus for each frame (``coc_gain / pixel_pitch``), (B, N).
        method: ``layered`` (occlusion-aware, default) or ``gather`` (fast, no occlusion).
        psf: ``disk``, ``gaussian`` or ``power``, for all samples or one per sample.
        power: exponent of the ``power`` PSF, for all samples or one per sample (B,).
        layers: number of depth layers (layered) or blur levels (gather); None chooses it per sample so that
            adjacent layers differ by at most ``step_px`` of blur radius, capped at ``max_layers``.
        max_layers: cap for the automatic choice.
        step_px: largest blur-radius difference between adjacent layers in the automatic choice (px).
        min_coarse: layered: a layer blurred by radius r >= 2 * min_coarse is blurred at a coarser pyramid level
            2^k (area down, bilinear up) where its radius is still >= ``min_coarse`` px; 0 = always full size.

    Returns:
        Frames in linear light, shape (B, N, C, H, W). Each sample's frames are what it gives alone.

    Shape:
        image (B, C, H, W), inv_depth (B, 1, H, W), focus_diopters (B, N), gain_px (B, N) -> (B, N, C, H, W)
    """
    if method not in ("layered", "gather"):
        raise ValueError(f"unknown render method {method!r}; use layered or gather")
    psfs = SamplePsfs.parse(psf, power, image.shape[0])
    q = inv_depth[:, 0]  # (B, H, W)
    opts = dict(layers=layers, max_layers=max_layers, step_px=step_px)
    if method == "gather":
        return _gather(image, q, focus_diopters.to(image.dtype), gain_px.to(image.dtype), psfs, **opts)
    return render_layered(image, q, focus_diopters.to(image.dtype), gain_px.to(image.dtype), psfs,
                          min_coarse=min_coarse, **opts)


def _gather(img, q, fq, gain, psfs: SamplePsfs, *, layers, max_layers, step_px):
    """img (B, C, H, W), q (B, H, W), fq (B, N), gain (B, N) -> (B, N, C, H, W)."""
    B, C, H, W = img.shape
    N = fq.shape[1]
    dev, dt = img.device, img.dtype
    radius = gain[:, :, None, None] * (fq[:, :, None, None] - q[:, None]).abs() / 2  # (B, N, H, W) per-pixel CoC
    top = radius.amax(dim=(1, 2, 3))  # (B,) kept in the graph: the ladder scales with the gain
    rmax = top.detach().cpu().double()  # (B,)
    steps = torch.where(rmax > 0, layer_count(rmax, layers, max_layers, step_px).clamp_min(2), 1)  # (B,) ladder sizes
    M = int(steps.max())
    if M == 1:
        return img[:, None].expand(B, N, C, H, W).clone()
    own = torch.tensor([support(float(rmax[b]), psfs.reach(b)) for b in range(B)])  # (B,)
    half = int(own.max())
    frac = torch.arange(M)[None].double() / (steps[:, None] - 1).clamp_min(1)  # (B, M)
    ladder = frac.clamp(max=1.0).to(dev, dt) * top[:, None]  # (B, M) blur radii
    pairs = torch.nonzero(torch.arange(M)[None] < torch.where(steps > 1, steps, 0)[:, None]).to(dev)  # (P, 2)
    b_p, m_p = pairs.unbind(1)
    kernels = SamplePsfs.bank(psfs.tables(dev, dt), ladder[b_p, m_p], half, b_p, own.to(dev)[b_p])  # (P, K, K)
    if 2 * half + 1 <= DIRECT_MAX_KERNEL:
        blurred = direct_blur(F.pad(img, (half,) * 4, mode="replicate")[b_p], kernels)  # (P, C, H, W)
    else:
        size = fft_size(H, W, half)
        blurred = spectral_blur(image_spectra(img, half, size)[b_p], kernel_spectra(kernels, size), size, half, H, W)
    copies = img.new_zeros(B * M, C, H, W).index_copy(0, b_p * M + m_p, blurred)  # (B*M, C, H, W)
    copies = copies.view(B, M, C * H * W)
    m = steps.to(dev, dt)[:, None, None, None]  # (B, 1, 1, 1)
    pos = radius / torch.where(top > 0, top, torch.ones_like(top))[:, None, None, None] * (m - 1)  # ladder index
    lo = torch.minimum(pos.detach().floor().clamp_min(0), (m - 2).clamp_min(0))  # (B, N, H, W)
    frac_t = (pos - lo)[:, :, None]  # (B, N, 1, H, W)
    index = lo.long()[:, :, None].expand(B, N, C, H, W).reshape(B, N, C * H * W)  # (B, N, C*H*W)
    a = copies.gather(1, index).view(B, N, C, H, W)
    b = copies.gather(1, index + 1).view(B, N, C, H, W)
    out = (1 - frac_t) * a + frac_t * b  # (B, N, C, H, W)
    sharp = (steps == 1).to(dev)[:, None, None, None, None]  # samples without blur: the image itself
    return torch.where(sharp, img[:, None], out)
