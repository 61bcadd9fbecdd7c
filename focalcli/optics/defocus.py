"""Depth-dependent defocus: point-spread functions and two renderers (layered, gather), in linear light.

Pure torch; the device and dtype follow the inputs. Blur is parameterised per pixel by the CoC radius in pixels,
``r = gain * |q_s - q| / 2`` with ``q = 1/depth`` and ``q_s = 1/focus`` in diopters and ``gain`` the CoC diameter in
pixels per diopter (``thinlens.coc_gain(...) / pixel_pitch``).

PSFs, all normalised to sum 1 and with the same second moment as a disk of radius ``r`` (``E[x^2 + y^2] = r^2/2``):
- ``disk``: anti-aliased uniform disk, weight ``clamp(r + 0.5 - rho, 0, 1)`` at pixel distance ``rho``.
- ``gaussian``: ``exp(-rho^2 / (2 sigma^2))`` with ``sigma = r / 2``.
- ``power``: generalised Gaussian ``exp(-(rho / a)^p)`` with ``a = r * sqrt(G(2/p) / (2 G(4/p)))`` (G = gamma);
  ``p = 2`` is the Gaussian, large ``p`` tends to the disk.

Renderers (both return frames of shape (B, N, C, H, W), linear light in, linear light out):
- ``layered`` (default, occlusion-aware): inverse depth is split into L layers with triangular (linear
  interpolation) weights; each layer's premultiplied colour and alpha are blurred with that layer's PSF, the layers
  are composited far to near with the "over" operator, and the colour is divided by the accumulated alpha (which
  removes the dark fringes that holes left by occluders would otherwise cause).
- ``gather``: each output pixel interpolates between copies of the image blurred at a ladder of radii, at its own
  radius. Fast and exact on smooth depth, but no occlusion: a blurred foreground does not spill over a sharp
  background.
Large kernels are applied by FFT (replicate padding, so there is no wrap-around); small ones by a grouped conv.
Layered blurs of radius >= 2 * ``min_coarse`` px run on a coarser pyramid level (area-downsampled layer, radius
scaled and corrected for the resampling, bilinear upsampling), which makes large defocus cheap.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "PSFS",
    "blur_each",
    "linear_to_srgb",
    "psf_kernels",
    "render_defocus",
    "srgb_to_linear",
]

PSFS = ("disk", "gaussian", "power")
_DIRECT_MAX_KERNEL = 5  # kernels up to this size use a direct grouped convolution, larger ones the FFT
# (on CPU a depthwise convolution costs about as much per plane at any kernel size as two FFTs)


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1 transfer function)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-12) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light in [0, 1] to sRGB encoding (values outside are clamped)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def _support(max_radius: float, psf: str) -> int:
    """Half-size (px) of a kernel that holds the PSF of radius ``max_radius``."""
    reach = 1.0 if psf == "disk" else 1.7  # Gaussian-like tails: ~3.4 sigma
    return int(math.ceil(max_radius * reach)) + 1


def psf_kernels(radius: torch.Tensor, half: int, psf: str = "disk", power: float = 8.0) -> torch.Tensor:
    """One normalised PSF per radius.

    Args:
        radius: CoC radii in pixels (>= 0), shape (L,).
        half: kernel half-size; kernels are ``2 * half + 1`` pixels square.
        psf: ``disk``, ``gaussian`` or ``power`` (see the module docstring).
        power: exponent p of the ``power`` PSF (>= 2).

    Returns:
        Kernels summing to 1, shape (L, K, K) with K = 2 * half + 1; radius 0 gives a unit impulse.

    Shape:
        radius (L,) -> (L, K, K)
    """
    if psf not in PSFS:
        raise ValueError(f"unknown PSF {psf!r}; use one of {', '.join(PSFS)}")
    coords = torch.arange(-half, half + 1, device=radius.device, dtype=radius.dtype)
    rho = torch.sqrt(coords[None, :] ** 2 + coords[:, None] ** 2)  # (K, K) distance from the centre
    r = radius[:, None, None]  # (L, 1, 1)
    if psf == "disk":
        w = (r + 0.5 - rho).clamp(0.0, 1.0)
    else:
        p = 2.0 if psf == "gaussian" else float(power)
        if p < 2:
            raise ValueError(f"power PSF needs p >= 2, got {p}")
        scale = math.sqrt(math.gamma(2 / p) / (2 * math.gamma(4 / p)))  # second moment equal to the disk's
        a = (r * scale).clamp_min(1e-3)
        w = torch.exp(-((rho / a) ** p))
    return w / w.sum(dim=(1, 2), keepdim=True)


def _fast_len(n: int) -> int:
    """Smallest m >= n whose prime factors are 2, 3 and 5 (fast FFT sizes)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def blur_each(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own kernel (replicate padding at the border).

    Args:
        images: shape (L, C, H, W).
        kernels: symmetric kernels, shape (L, K, K), K odd.

    Returns:
        Blurred images, shape (L, C, H, W).
    """
    L, C, H, W = images.shape
    K = kernels.shape[-1]
    half = K // 2
    if half == 0:
        return images * kernels.reshape(L, 1, 1, 1)
    padded = F.pad(images.reshape(1, L * C, H, W), (half,) * 4, mode="replicate")  # (1, L*C, H+2h, W+2h)
    if K <= _DIRECT_MAX_KERNEL:
        weight = kernels.repeat_interleave(C, dim=0)[:, None]  # (L*C, 1, K, K)
        return F.conv2d(padded, weight, groups=L * C).reshape(L, C, H, W)
    spectra = _spectra(padded.reshape(L, C, H + 2 * half, W + 2 * half))
    return _apply_kernels(spectra, kernels, H, W)


def _spectra(padded: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """rfft2 of padded images (L, C, Hp, Wp) at fast sizes; returns (spectrum, fft size)."""
    hp, wp = padded.shape[-2:]
    size = (_fast_len(hp), _fast_len(wp))
    return torch.fft.rfft2(padded, s=size), size


def _apply_kernels(spectra, kernels: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """Multiply image spectra (L, C, ...) padded by the kernels' half-size by the spectra of centred kernels
    (L, K, K) and crop to (L, C, H, W)."""
    spec, size = spectra
    half = pad = kernels.shape[-1] // 2
    kpad = torch.zeros(kernels.shape[0], *size, device=kernels.device, dtype=kernels.dtype)  # (L, Hf, Wf)
    # kernel centre at the origin: its four quadrants wrap around the corners
    kpad[:, : half + 1, : half + 1] = kernels[:, half:, half:]
    kpad[:, : half + 1, -half:] = kernels[:, half:, :half]
    kpad[:, -half:, : half + 1] = kernels[:, :half, half:]
    kpad[:, -half:, -half:] = kernels[:, :half, :half]
    out = torch.fft.irfft2(spec * torch.fft.rfft2(kpad)[:, None], s=size)  # (L, C, Hf, Wf)
    return out[..., pad : pad + H, pad : pad + W]


def render_defocus(
    image: torch.Tensor,
    inv_depth: torch.Tensor,
    focus_diopters: torch.Tensor,
    gain_px: torch.Tensor,
    *,
    method: str = "layered",
    psf: str = "disk",
    power: float = 8.0,
    layers: int | None = None,
    max_layers: int = 32,
    step_px: float = 1.0,
    min_coarse: float = 3.0,
) -> torch.Tensor:
    """Render a focal stack from a linear-light image and its inverse depth.

    Args:
        image: linear-light colour, shape (B, C, H, W).
        inv_depth: inverse depth ``1/d`` in diopters (finite, > 0: fill holes first), shape (B, 1, H, W).
        focus_diopters: ``1/s`` of each frame, shape (B, N).
        gain_px: CoC diameter in pixels per diopter of defocus for each frame (``coc_gain / pixel_pitch``), (B, N).
        method: ``layered`` (occlusion-aware, default) or ``gather`` (fast, no occlusion).
        psf: ``disk``, ``gaussian`` or ``power``.
        power: exponent of the ``power`` PSF.
        layers: number of depth layers (layered) or blur levels (gather); None chooses it so that adjacent layers
            differ by at most ``step_px`` of blur radius, capped at ``max_layers``.
        max_layers: cap for the automatic choice.
        step_px: largest blur-radius difference between adjacent layers in the automatic choice (px).
        min_coarse: layered: a layer blurred by radius r >= 2 * min_coarse is blurred at a coarser pyramid level
            2^k (area down, bilinear up) where its radius is still >= ``min_coarse`` px; 0 = always full size.

    Returns:
        Frames in linear light, shape (B, N, C, H, W).

    Shape:
        image (B, C, H, W), inv_depth (B, 1, H, W), focus_diopters (B, N), gain_px (B, N) -> (B, N, C, H, W)
    """
    if method not in ("layered", "gather"):
        raise ValueError(f"unknown render method {method!r}; use layered or gather")
    B = image.shape[0]
    out = []
    for b in range(B):
        args = (image[b], inv_depth[b, 0], focus_diopters[b], gain_px[b])
        fn = _layered if method == "layered" else _gather
        out.append(fn(*args, psf=psf, power=power, layers=layers, max_layers=max_layers, step_px=step_px,
                      min_coarse=min_coarse))
    return torch.stack(out)  # (B, N, C, H, W)


def _count(span_px: float, layers: int | None, max_layers: int, step_px: float) -> int:
    if layers is not None:
        return max(1, int(layers))
    return int(min(max_layers, max(1, math.ceil(span_px / step_px) + 1)))


def _levels(radii: torch.Tensor, min_coarse: float, h: int, w: int) -> torch.Tensor:
    """Pyramid level of each blur: the coarsest 2^k with radius / 2^k >= ``min_coarse`` (0 = always full size)."""
    if min_coarse <= 0:
        return torch.zeros_like(radii, dtype=torch.long)
    top = max(0, int(math.log2(max(1, min(h, w) // 8))))  # keep coarse images at least ~8 px
    k = torch.floor(torch.log2((radii.detach() / min_coarse).clamp_min(1.0)))
    return k.clamp(0, top).long()


def _downsample(x: torch.Tensor, s: int) -> torch.Tensor:
    """Area-average (L, C, H, W) by ``s`` after replicate-padding to a multiple of ``s``."""
    if s == 1:
        return x
    H, W = x.shape[-2:]
    x = F.pad(x, (0, -W % s, 0, -H % s), mode="replicate")
    return F.avg_pool2d(x, s)


def _layered(img, q, fq, gain, *, psf, power, layers, max_layers, step_px, min_coarse):
    """One sample: img (C, H, W), q (H, W), fq (N,), gain (N,) -> (N, C, H, W)."""
    C, H, W = img.shape
    qmin, qmax = q.detach().min(), q.detach().max()
    span = float(qmax - qmin)
    L = 1 if span <= 0 else _count(float(gain.detach().max()) * span / 2, layers, max_layers, step_px)
    if L == 1:
        centres = qmin.reshape(1).to(img.dtype)  # (1,)
        alpha = torch.ones(1, H, W, device=img.device, dtype=img.dtype)
    else:
        centres = torch.linspace(float(qmin), float(qmax), L, device=img.device, dtype=img.dtype)  # far .. near
        t = (q - qmin) / span * (L - 1)  # (H, W) continuous layer index
        idx = torch.arange(L, device=img.device, dtype=img.dtype)[:, None, None]
        alpha = (1.0 - (t[None] - idx).abs()).clamp_min(0.0)  # (L, H, W) triangular weights, sum 1 per pixel
    rgba = torch.cat([img[None] * alpha[:, None], alpha[:, None]], dim=1)  # (L, C+1, H, W) premultiplied
    radii = gain[:, None] * (fq[:, None] - centres[None]).abs() / 2  # (N, L) CoC radius in px
    level = _levels(radii, min_coarse, H, W)  # (N, L) pyramid level of each blur
    # At level k the layer is area-downsampled by s = 2^k, blurred, and bilinearly upsampled; the two resamplings
    # add s^2/4 of variance per axis, which the coarse radius takes off (a disk of radius r has r^2/4).
    scale = (2.0 ** level).to(radii.dtype)
    coarse = torch.where(level > 0, torch.sqrt((radii**2 / scale**2 - 1.0).clamp_min(0.0)), radii)  # (N, L)
    plans = {}
    for k in torch.unique(level).tolist():
        src = _downsample(rgba, 2**k)  # (L, C+1, h, w)
        half = _support(float(coarse[level == k].detach().max()), psf)
        spectra = None
        if 2 * half + 1 > _DIRECT_MAX_KERNEL:  # one FFT per layer, shared by every frame
            h, w = src.shape[-2:]
            padded = F.pad(src.reshape(1, -1, h, w), (half,) * 4, mode="replicate")
            spectra = _spectra(padded.reshape(L, C + 1, h + 2 * half, w + 2 * half))
        plans[k] = (src, half, spectra)
    frames = []
    for n in range(radii.shape[0]):
        acc = torch.zeros_like(rgba[0])  # (C+1, H, W) composite so far
        for a, b in _runs(level[n]):  # layers a..b-1 (far to near) share a pyramid level
            k = int(level[n, a])
            src, half, spectra = plans[k]
            h, w = src.shape[-2:]
            # a run on a coarse level is composited there and upsampled once (its layers are smooth at that scale)
            target = acc if k == 0 else torch.zeros_like(src[0])  # (C+1, h, w)
            kernels = psf_kernels(coarse[n, a:b], half, psf, power)  # (l, K, K)
            if spectra is None:
                blurred = blur_each(src[a:b], kernels)
            else:
                blurred = _apply_kernels((spectra[0][a:b], spectra[1]), kernels, h, w)
            target = _over(blurred, C, target)
            if k == 0:
                acc = target
            else:
                up = F.interpolate(target[None], size=(h * 2**k, w * 2**k), mode="bilinear", align_corners=False)
                acc = _over(up[..., :H, :W], C, acc)  # up: (1, C+1, H, W)
        frames.append(acc[:C] / acc[C:].clamp_min(1e-6))
    return torch.stack(frames)  # (N, C, H, W)


def _runs(levels: torch.Tensor) -> list[tuple[int, int]]:
    """Index ranges [a, b) of equal consecutive values in a 1-D tensor."""
    values = levels.tolist()
    cuts = [0] + [i for i in range(1, len(values)) if values[i] != values[i - 1]] + [len(values)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _over(layers: torch.Tensor, C: int, acc: torch.Tensor) -> torch.Tensor:
    """Composite premultiplied layers (L, C+1, H, W), far first, over ``acc`` (C+1, H, W) with "over"."""
    if torch.is_grad_enabled() and (layers.requires_grad or acc.requires_grad):
        for layer in layers:
            acc = layer + (1.0 - layer[C:]) * acc
    else:  # the same arithmetic in place: no temporaries per layer
        for layer in layers:
            acc.addcmul_(layer[C:].expand_as(acc), acc, value=-1.0).add_(layer)
    return acc


def _gather(img, q, fq, gain, *, psf, power, layers, max_layers, step_px, min_coarse):
    """One sample: img (C, H, W), q (H, W), fq (N,), gain (N,) -> (N, C, H, W)."""
    radius = gain[:, None, None] * (fq[:, None, None] - q[None]).abs() / 2  # (N, H, W) per-pixel CoC radius
    rmax = float(radius.detach().max())
    M = 1 if rmax <= 0 else max(2, _count(rmax, layers, max_layers, step_px))
    if M == 1:
        return img[None].expand(radius.shape[0], -1, -1, -1).clone()
    top = radius.max()  # kept in the graph: the ladder scales with the gain
    ladder = torch.linspace(0.0, 1.0, M, device=img.device, dtype=img.dtype) * top  # (M,) blur radii
    half = _support(rmax, psf)
    copies = blur_each(img[None].expand(M, -1, -1, -1), psf_kernels(ladder, half, psf, power))  # (M, C, H, W)
    pos = radius / top * (M - 1)  # (N, H, W) continuous ladder index
    lo = pos.detach().floor().clamp(0, M - 2)
    t = (pos - lo)[:, None]  # (N, 1, H, W)
    lo = lo.long()
    flat = copies.reshape(M, -1)  # (M, C*H*W)
    C, H, W = img.shape
    frames = []
    for n in range(radius.shape[0]):
        i = lo[n].reshape(1, 1, H, W).expand(1, C, H, W).reshape(1, -1)  # (1, C*H*W)
        a = flat.gather(0, i).reshape(C, H, W)
        b = flat.gather(0, i + 1).reshape(C, H, W)
        frames.append((1 - t[n]) * a + t[n] * b)
    return torch.stack(frames)  # (N, C, H, W)
