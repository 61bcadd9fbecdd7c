"""Point-spread functions and batched spatially-invariant blur (FFT or direct), the building blocks of
``optics.defocus``.

Pure torch; the device and dtype follow the inputs. PSFs are normalised to sum 1 and have the second moment of a
disk of radius ``r`` (``E[x^2 + y^2] = r^2 / 2``):

- ``disk``: anti-aliased uniform disk, weight ``clamp(r + 0.5 - rho, 0, 1)`` at pixel distance ``rho``.
- ``gaussian``: ``exp(-rho^2 / (2 sigma^2))`` with ``sigma = r / 2`` (the ``power`` PSF with ``p = 2``).
- ``power``: generalised Gaussian ``exp(-(rho / a)^p)`` with ``a = r * sqrt(G(2/p) / (2 G(4/p)))`` (G = gamma);
  large ``p`` tends to the disk.

A *kernel bank* holds one kernel per blur, each with its own radius, family, exponent and support, all in one
``(P, K, K)`` tensor (K from the largest support; a kernel is zero outside its own support). Blurs are applied by
FFT with replicate padding (no wrap-around), or by a grouped convolution for tiny kernels; every call is batched
over all the blurs at once. ``SamplePsfs`` holds the PSF of each sample of a batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["DIRECT_MAX_KERNEL", "PSFS", "SamplePsfs", "blur_each", "direct_blur", "fast_len", "fft_size",
           "image_spectra", "kernel_bank", "kernel_spectra", "psf_kernels", "psf_reach", "psf_scale", "spectral_blur",
           "support"]

PSFS = ("disk", "gaussian", "power")
DIRECT_MAX_KERNEL = 5  # kernels up to this size use a direct grouped convolution, larger ones the FFT


def psf_reach(psf: str) -> float:
    """How far (in radii) a PSF's kernel must extend: 1 for the disk, 1.7 (~3.4 sigma) for Gaussian-like tails."""
    return 1.0 if psf == "disk" else 1.7


def support(max_radius: float, reach: float) -> int:
    """Half-size (px) of a kernel that holds a PSF of radius ``max_radius`` with the given reach."""
    return int(math.ceil(max_radius * reach)) + 1


def psf_scale(p: float) -> float:
    """``a / r`` of the power PSF with exponent ``p``: equal second moments with the disk."""
    return math.sqrt(math.gamma(2 / p) / (2 * math.gamma(4 / p)))


def kernel_bank(radius: torch.Tensor, half: int, *, disk: torch.Tensor | None = None,
                power: torch.Tensor | None = None, scale: torch.Tensor | None = None,
                own_half: torch.Tensor | None = None) -> torch.Tensor:
    """One normalised PSF per radius, each with its own family, exponent and support.

    Args:
        radius: CoC radii in pixels (>= 0), shape (P,).
        half: half-size of the bank's kernels (``K = 2 * half + 1``), at least every ``own_half``.
        disk: bool (P,): which kernels are disks (the others are power PSFs); None: all are disks when ``power`` is
            None, else all are power PSFs.
        power: exponents p >= 2 of the power PSFs, shape (P,) (ignored where ``disk``); None when all are disks.
        scale: ``psf_scale(p)`` of each power PSF, shape (P,) (computed on the host in float64 by the caller).
        own_half: half-size of each kernel's own support, shape (P,) long; weights outside it are zero (so a
            kernel does not depend on the rest of the bank). None: every kernel fills the bank's K x K.

    Returns:
        Kernels summing to 1, shape (P, K, K); radius 0 gives a unit impulse.
    """
    coords = torch.arange(-half, half + 1, device=radius.device, dtype=radius.dtype)
    rho = torch.sqrt(coords[None, :] ** 2 + coords[:, None] ** 2)  # (K, K) distance from the centre
    r = radius[:, None, None]  # (P, 1, 1)
    w = None
    if power is None or disk is not None:
        w = (r + 0.5 - rho).clamp(0.0, 1.0)  # (P, K, K) disks
    if power is not None:
        a = (r * scale[:, None, None]).clamp_min(1e-3)  # (P, 1, 1)
        g = torch.exp(-((rho / a) ** power[:, None, None]))  # (P, K, K) power PSFs
        w = g if w is None else torch.where(disk[:, None, None], w, g)
    if own_half is not None:
        reach = coords.abs().to(own_half.dtype)  # (K,)
        inside = (reach[None, :, None] <= own_half[:, None, None]) & (reach[None, None, :] <= own_half[:, None, None])
        w = w * inside.to(w.dtype)  # (P, K, K)
    return w / w.sum(dim=(1, 2), keepdim=True)


def psf_kernels(radius: torch.Tensor, half: int, psf: str = "disk", power: float = 8.0) -> torch.Tensor:
    """One normalised PSF of a single family per radius.

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
    if psf == "disk":
        return kernel_bank(radius, half)
    p = 2.0 if psf == "gaussian" else float(power)
    if p < 2:
        raise ValueError(f"power PSF needs p >= 2, got {p}")
    n = radius.shape[0]
    full = torch.full((n,), p, device=radius.device, dtype=radius.dtype)  # (L,)
    return kernel_bank(radius, half, power=full, scale=torch.full_like(full, psf_scale(p)))


def fast_len(n: int) -> int:
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


def fft_size(h: int, w: int, half: int) -> tuple[int, int]:
    """FFT size for ``h x w`` images replicate-padded by ``half`` on each side."""
    return fast_len(h + 2 * half), fast_len(w + 2 * half)


def image_spectra(images: torch.Tensor, half: int, size: tuple[int, int]) -> torch.Tensor:
    """rfft2 of images replicate-padded by ``half``. Shape: (U, C, h, w) -> (U, C, Hf, Wf // 2 + 1) complex."""
    return torch.fft.rfft2(F.pad(images, (half,) * 4, mode="replicate"), s=size)


def kernel_spectra(kernels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """rfft2 of centred kernels placed with their centre at the origin (their quadrants wrap around the corners).

    Shape: (P, K, K) -> (P, Hf, Wf // 2 + 1) complex.
    """
    half = kernels.shape[-1] // 2
    kpad = kernels.new_zeros(kernels.shape[0], *size)  # (P, Hf, Wf)
    kpad[:, : half + 1, : half + 1] = kernels[:, half:, half:]
    if half:
        kpad[:, : half + 1, -half:] = kernels[:, half:, :half]
        kpad[:, -half:, : half + 1] = kernels[:, :half, half:]
        kpad[:, -half:, -half:] = kernels[:, :half, :half]
    return torch.fft.rfft2(kpad)


def spectral_blur(spectra: torch.Tensor, kspec: torch.Tensor, size: tuple[int, int], half: int, h: int,
                  w: int, *, inplace: bool = False) -> torch.Tensor:
    """Multiply image spectra by kernel spectra, invert, crop the padding.

    Args:
        inplace: multiply ``spectra`` in place (it must be a temporary, outside autograd).

    Shape:
        spectra (P, C, Hf, Wf') and kspec (P, Hf, Wf') -> (P, C, h, w)
    """
    product = spectra.mul_(kspec[:, None]) if inplace else spectra * kspec[:, None]  # (P, C, Hf, Wf')
    out = torch.fft.irfft2(product, s=size)  # (P, C, Hf, Wf)
    return out[..., half : half + h, half : half + w]


def direct_blur(padded: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur images already replicate-padded by the kernels' half-size, one kernel each (grouped convolution).

    Shape:
        padded (P, C, h + 2 half, w + 2 half), kernels (P, K, K) -> (P, C, h, w)
    """
    P, C, hp, wp = padded.shape
    K = kernels.shape[-1]
    weight = kernels.repeat_interleave(C, dim=0)[:, None]  # (P*C, 1, K, K)
    out = F.conv2d(padded.reshape(1, P * C, hp, wp), weight, groups=P * C)  # (1, P*C, h, w)
    return out.reshape(P, C, hp - K + 1, wp - K + 1)


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
    if K <= DIRECT_MAX_KERNEL:
        return direct_blur(F.pad(images, (half,) * 4, mode="replicate"), kernels)
    size = fft_size(H, W, half)
    return spectral_blur(image_spectra(images, half, size), kernel_spectra(kernels, size), size, half, H, W)


@dataclass(frozen=True)
class SamplePsfs:
    """Per-sample PSF families, known on the host: ``disk[b]``, exponent ``power[b]`` (2 for gaussian).

    ``parse`` raises ``ValueError`` for an unknown family, a power below 2 or a list of the wrong length.
    """

    disk: tuple[bool, ...]
    power: tuple[float, ...]

    @classmethod
    def parse(cls, psf: str | Sequence[str], power: float | Sequence[float] | torch.Tensor, B: int) -> SamplePsfs:
        names = [psf] * B if isinstance(psf, str) else list(psf)
        if isinstance(power, torch.Tensor):
            power = power.detach().cpu().double().reshape(-1).tolist()
        powers = [float(power)] * B if isinstance(power, int | float) else [float(p) for p in power]
        if len(names) != B or len(powers) != B:
            raise ValueError(f"psf and power need one value or one per sample ({B}), got {len(names)} and "
                             f"{len(powers)}")
        for name, p in zip(names, powers, strict=True):
            if name not in PSFS:
                raise ValueError(f"unknown PSF {name!r}; use one of {', '.join(PSFS)}")
            if name == "power" and not p >= 2:
                raise ValueError(f"power PSF needs p >= 2, got {p}")
        return cls(tuple(n == "disk" for n in names),
                   tuple(2.0 if n == "gaussian" else (8.0 if n == "disk" else p) for n, p in zip(names, powers,
                                                                                                  strict=True)))

    def reach(self, b: int) -> float:
        return psf_reach("disk" if self.disk[b] else "power")

    def tables(self, device: torch.device, dtype: torch.dtype) -> dict[str, torch.Tensor] | None:
        """Per-sample ``disk``, ``power`` and ``scale`` on the device (None when every PSF is a disk)."""
        if all(self.disk):
            return None
        values = torch.tensor([[float(d), p, psf_scale(p)] for d, p in zip(self.disk, self.power, strict=True)],
                              dtype=torch.float64).to(device, dtype)  # (B, 3)
        return {"disk": values[:, 0] > 0 if any(self.disk) else None, "power": values[:, 1], "scale": values[:, 2]}

    @staticmethod
    def bank(tables, radius: torch.Tensor, half: int, sample: torch.Tensor, own_half: torch.Tensor) -> torch.Tensor:
        """Kernels for ``radius`` (P,) of samples ``sample`` (P,) (device tensors) -> (P, K, K)."""
        if tables is None:
            return kernel_bank(radius, half, own_half=own_half)
        disk = None if tables["disk"] is None else tables["disk"][sample]
        return kernel_bank(radius, half, disk=disk, power=tables["power"][sample], scale=tables["scale"][sample],
                           own_half=own_half)
