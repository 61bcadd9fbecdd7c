"""RGB-D to focal stack: the one renderer behind ``focal synth`` and the on-the-fly training loaders.

Pipeline: sRGB -> linear light; depth holes filled (for rendering only); per-frame CoC from the thin lens
(``optics.thinlens``); occlusion-aware layered defocus (``optics.defocus``); exposure, shot + read noise in linear
light; back to sRGB; quantised to 8 or 16 bits. Works on any device: it follows the input tensors (pass a generator
on the same device when noise is on).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F

from focalcli.checks import check_shape
from focalcli.errors import ConfigError, InputError
from focalcli.io.depth import valid_depth
from focalcli.io.stack import Camera, FocalStack
from focalcli.optics.defocus import PSFS, linear_to_srgb, render_defocus, srgb_to_linear
from focalcli.optics.thinlens import MIN_F_NUMBER, coc_gain
from focalcli.synth.sampling import SampleParams
from focalcli.synth.sensor import add_sensor_noise, noise_on, quantize

__all__ = ["SynthConfig", "add_sensor_noise", "crop_flip", "fill_depth", "max_blur_px", "render_frames",
           "render_sample", "render_stack"]


@dataclass(frozen=True)
class SynthConfig:
    """How stacks are rendered (the optics of each stack come from its ``Camera`` and focus distances)."""

    method: str = "layered"  # layered (occlusion-aware) or gather (fast, no occlusion)
    psf: str = "disk"  # disk, gaussian or power
    psf_power: float = 8.0  # exponent p of the power PSF (2 = Gaussian, large = disk)
    layers: int | None = None  # depth layers / blur levels; None = automatic (see max_layers, layer_step_px)
    max_layers: int = 32  # cap on the automatic layer count
    layer_step_px: float = 1.0  # automatic layers: at most this blur-radius step (px) between adjacent layers
    min_coarse_px: float = 3.0  # layered: blurs of radius >= 2x this run on a coarser pyramid level; 0 = never
    shot_noise: float = 0.0  # shot-noise variance per unit of linear signal (var = shot * x + read^2)
    read_noise: float = 0.0  # read-noise standard deviation in linear units of full scale
    bit_depth: int = 8  # output quantisation: 8 or 16 bits (0 = none, float frames)

    def __post_init__(self):
        if self.method not in ("layered", "gather"):
            raise ConfigError(f"unknown render method {self.method!r}; use layered or gather")
        if self.psf not in PSFS:
            raise ConfigError(f"unknown PSF {self.psf!r}; use one of {', '.join(PSFS)}")
        if self.psf_power < 2:
            raise ConfigError(f"psf_power must be >= 2, got {self.psf_power}")
        if self.bit_depth not in (0, 8, 16):
            raise ConfigError(f"bit_depth must be 8, 16 or 0 (no quantisation), got {self.bit_depth}")
        if self.shot_noise < 0 or self.read_noise < 0:
            raise ConfigError("noise levels must be >= 0")
        if self.layers is not None and self.layers < 1 or self.max_layers < 1 or self.layer_step_px <= 0:
            raise ConfigError("layers and max_layers must be >= 1 and layer_step_px > 0")

    def to_json(self) -> dict:
        return asdict(self)


def fill_depth(depth: torch.Tensor) -> torch.Tensor:
    """Fill holes (0, negative, NaN, inf) for rendering by pull-push interpolation of inverse depth.

    Each hole takes the (inverse-depth) average of the valid pixels at the finest pyramid level where its
    neighbourhood has any. Valid pixels are returned unchanged.

    Args:
        depth: metres, shape (B, 1, H, W).

    Returns:
        Depth without holes, shape (B, 1, H, W).

    Raises:
        InputError: a sample has no valid depth at all.
    """
    valid = valid_depth(depth)
    if not bool(valid.flatten(1).any(dim=1).all()):
        raise InputError("depth map has no valid values (all 0, negative or NaN)")
    if bool(valid.all()):
        return depth
    w = valid.to(depth.dtype)
    q = torch.where(valid, 1.0 / torch.where(valid, depth, torch.ones_like(depth)), torch.zeros_like(depth)) * w
    pyramid = [(q, w)]
    while bool((pyramid[-1][1] == 0).any()) and min(pyramid[-1][0].shape[-2:]) > 1:
        qs, ws = pyramid[-1]
        pyramid.append((F.avg_pool2d(qs, 2, ceil_mode=True), F.avg_pool2d(ws, 2, ceil_mode=True)))
    qs, ws = pyramid[-1]
    filled = qs / ws.clamp_min(1e-12)  # coarsest level (no holes left, or a single pixel per sample)
    for qs, ws in reversed(pyramid[:-1]):
        up = F.interpolate(filled, size=qs.shape[-2:], mode="nearest")
        filled = torch.where(ws > 0, qs / ws.clamp_min(1e-12), up)
    return torch.where(valid, depth, 1.0 / filled)


def render_frames(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    focus_distances: torch.Tensor,
    gain_px: torch.Tensor,
    *,
    config: SynthConfig = SynthConfig(),
    exposure: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    psf: str | Sequence[str] | None = None,
    psf_power: float | Sequence[float] | torch.Tensor | None = None,
    shot_noise: float | Sequence[float] | torch.Tensor | None = None,
    read_noise: float | Sequence[float] | torch.Tensor | None = None,
    noise_seed: torch.Tensor | Sequence[int] | None = None,
) -> torch.Tensor:
    """Batched rendering for data loaders and training on a GPU: sRGB + depth + per-frame optics -> sRGB frames.

    Each sample may have its own optics, PSF and noise; a sample's frames do not depend on the rest of the batch.
    Everything follows the device of ``rgb``; no Python loop runs over the batch.

    Args:
        rgb: sRGB colour in [0, 1], shape (B, 3, H, W).
        depth: metres, holes allowed (0 or NaN: filled for rendering), shape (B, 1, H, W).
        focus_distances: metres, shape (B, N).
        gain_px: CoC diameter in pixels per diopter of defocus, shape (B, N) (see ``coc_gain``).
        config: rendering options; the fields below override its PSF and noise per sample.
        exposure: linear gain of each frame (exposure / gain jitter), shape (B, N); None = 1.
        generator: random source of the noise (``torch.randn``, same device as ``rgb``).
        psf: PSF family for all samples or one per sample; None = ``config.psf``.
        psf_power: exponent of the power PSF, one or (B,); None = ``config.psf_power``.
        shot_noise: shot-noise variance per unit of signal, one or (B,); None = ``config.shot_noise``.
        read_noise: read-noise standard deviation, one or (B,); None = ``config.read_noise``.
        noise_seed: one int64 seed per sample (B,): device-independent noise (``synth.noise``), the same on a CPU
            and a GPU; takes precedence over ``generator``. One of the two is needed when noise is on.

    Returns:
        sRGB frames in [0, 1], quantised to ``config.bit_depth``, shape (B, N, 3, H, W).

    Raises:
        ShapeError, InputError: wrong shapes or per-sample lengths, no valid depth in a sample.
        ConfigError: noise on without a generator or seeds; unknown PSF or a power below 2.
    """
    check_shape(rgb, "B 3 H W", "rgb")
    sizes = check_shape(depth, "B 1 H W", "depth")
    if depth.shape[0] != rgb.shape[0] or depth.shape[-2:] != rgb.shape[-2:]:
        raise InputError(f"depth size {tuple(depth.shape[-2:])} differs from rgb size {tuple(rgb.shape[-2:])}")
    check_shape(focus_distances, "B N", "focus_distances")
    B = sizes["B"]
    if focus_distances.shape[0] != B or gain_px.shape != focus_distances.shape:
        raise InputError("focus_distances and gain_px must both be (B, N) with the batch size of rgb")
    if exposure is not None and tuple(exposure.shape) != tuple(focus_distances.shape):
        raise InputError(f"exposure must be (B, N) = {tuple(focus_distances.shape)}, got {tuple(exposure.shape)}")
    psf = config.psf if psf is None else psf
    psf_power = config.psf_power if psf_power is None else psf_power
    shot = config.shot_noise if shot_noise is None else shot_noise
    read = config.read_noise if read_noise is None else read_noise
    noisy = noise_on(shot) or noise_on(read)
    if noisy and generator is None and noise_seed is None:
        raise ConfigError("noise is on but neither a torch.Generator nor noise seeds were passed")
    if noise_seed is not None:
        noise_seed = torch.as_tensor(noise_seed, dtype=torch.int64).reshape(-1)
        if noise_seed.numel() != B:
            raise InputError(f"noise_seed needs one seed per sample ({B}), got {noise_seed.numel()}")
    linear = srgb_to_linear(rgb)
    inv_depth = 1.0 / fill_depth(depth).to(rgb.dtype)  # (B, 1, H, W) diopters
    try:
        frames = render_defocus(
            linear, inv_depth, (1.0 / focus_distances).to(rgb.dtype), gain_px.to(rgb.dtype),
            method=config.method, psf=psf, power=psf_power, layers=config.layers,
            max_layers=config.max_layers, step_px=config.layer_step_px, min_coarse=config.min_coarse_px,
        )  # (B, N, 3, H, W) linear
    except ValueError as e:  # an unknown PSF, a power below 2, or a per-sample list of the wrong length
        raise ConfigError(str(e)) from None
    if exposure is not None:
        frames = frames * exposure.to(frames.device, frames.dtype)[:, :, None, None, None]
    if noisy:
        frames = add_sensor_noise(frames, shot, read, generator, noise_seed=noise_seed)
    return quantize(linear_to_srgb(frames), config.bit_depth)


def render_stack(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    camera: Camera,
    focus_distances: torch.Tensor,
    *,
    config: SynthConfig = SynthConfig(),
    exposure: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    noise_seed: int | None = None,
) -> FocalStack:
    """Render one focal stack from an sRGB image and its metric depth.

    Args:
        rgb: sRGB colour in [0, 1], shape (3, H, W).
        depth: metres, 0/NaN = hole (filled for rendering only), shape (1, H, W).
        camera: ``focal_length_mm``, ``f_number`` and ``pixel_pitch_um`` (all required).
        focus_distances: focus distance of each frame in metres (any order; the stack is sorted near to far),
            each larger than the focal length, shape (N,).
        config: rendering options.
        exposure: linear gain per frame, shape (N,), in the given order; None = 1.
        generator: random source for the noise.
        noise_seed: seed of device-independent noise (``synth.noise``); takes precedence over ``generator``.

    Returns:
        A ``FocalStack`` with frames (N, 3, H, W) near to far, the focus distances and the camera.

    Blur is bounded by what the image can show (``max_blur_px``): where a frame's CoC would be wider, the depth
    is clamped for that frame, which changes nothing visible and keeps memory proportional to the image.

    Raises:
        InputError: wrong shapes, no valid depth, or a focus distance not beyond the focal length.
        ConfigError: incomplete camera, or an f-number below ``MIN_F_NUMBER``.
    """
    check_shape(rgb, "3 H W", "rgb")
    check_shape(depth, "1 H W", "depth")
    if camera.focal_length_mm is None or camera.f_number is None or camera.pixel_pitch_um is None:
        raise ConfigError(f"camera needs focal_length_mm, f_number and pixel_pitch_um, got {camera.to_json()}")
    fd = torch.as_tensor(focus_distances, dtype=torch.float64).flatten()
    order = torch.argsort(fd)
    fd = fd[order]
    f = camera.focal_length_mm / 1000.0
    if bool((fd <= f).any()):
        raise InputError(f"focus distances must exceed the focal length ({f} m), got {fd.tolist()}")
    if camera.f_number < MIN_F_NUMBER:
        raise ConfigError(f"f-number {camera.f_number:g} is impossible: no lens in air is faster than "
                          f"f/{MIN_F_NUMBER:g}")
    gain = coc_gain(fd, f, camera.f_number) / (camera.pixel_pitch_um * 1e-6)  # (N,) CoC px per diopter
    exp = None if exposure is None else torch.as_tensor(exposure, dtype=torch.float64).flatten()[order][None]
    dev = rgb.device
    limits = _diopter_limits(depth, fd, gain, max_blur_px(*rgb.shape[-2:]))
    if limits is None:  # every blur fits the image: one batched render
        frames = render_frames(
            rgb[None], depth[None], fd[None].to(dev), gain[None].to(dev), config=config,
            exposure=None if exp is None else exp.to(dev), generator=generator,
            noise_seed=None if noise_seed is None else [noise_seed],
        )[0]  # (N, 3, H, W)
    else:  # frame by frame, each with the depth it cannot tell apart from a blur wider than the image clamped
        frames = torch.cat([render_frames(
            rgb[None], _clamp_diopters(depth, lo, hi)[None], fd[None, i : i + 1].to(dev),
            gain[None, i : i + 1].to(dev), config=config,
            exposure=None if exp is None else exp[:, i : i + 1].to(dev), generator=generator,
            noise_seed=None if noise_seed is None else [noise_seed + i],  # one frame each: a seed of its own
        )[0] for i, (lo, hi) in enumerate(limits)])  # (N, 3, H, W)
    names = [f"frame_{i:02d}.png" for i in range(len(fd))]
    return FocalStack(frames=frames.float(), focus_distances_m=fd.float(), camera=camera, names=names,
                      bit_depth=16 if config.bit_depth == 16 else 8)


def max_blur_px(h: int, w: int) -> float:
    """The widest blur (CoC diameter, px) worth rendering in an ``h`` x ``w`` image: twice its diagonal.

    A disk that wide centred on any pixel covers the whole image, so every wider blur gives the same picture (the
    image's average, up to the border padding). Rendering stops there, which bounds kernels, padding and memory by
    a multiple of the image size however extreme the optics or the depth.
    """
    return 2.0 * math.hypot(h, w)


def _diopter_limits(depth: torch.Tensor, fd: torch.Tensor, gain: torch.Tensor, max_blur: float
                    ) -> list[tuple[float, float]] | None:
    """Per frame, the inverse-depth interval ``1/s +- max_blur / gain`` whose blur is at most ``max_blur``; None
    when the scene's depth range already lies within every frame's interval (nothing to clamp)."""
    ok = valid_depth(depth)
    if not bool(ok.any()):
        return None  # render_frames says what is wrong
    q = 1.0 / depth[ok].double()
    qmin, qmax = float(q.min()), float(q.max())
    fq, g = (1.0 / fd).tolist(), gain.tolist()
    limits = [(qi - max_blur / gi, qi + max_blur / gi) for qi, gi in zip(fq, g, strict=True)]
    if all(lo <= qmin and qmax <= hi for lo, hi in limits):
        return None
    return limits


def _clamp_diopters(depth: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Valid depth clamped to inverse depths in [lo, hi] (holes stay holes)."""
    near = 1.0 / hi
    far = 1.0 / lo if lo > 0 else math.inf
    return torch.where(valid_depth(depth), depth.clamp(min=near, max=far), depth)


def render_sample(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    params: SampleParams,
    *,
    config: SynthConfig = SynthConfig(),
    generator: torch.Generator | None = None,
    noise_seed: int | None = None,
) -> tuple[FocalStack, torch.Tensor]:
    """Render one sample described by ``params`` (crop, flip, colour gains, PSF, noise, exposure, optics).

    ``params`` overrides the PSF and noise fields of ``config``. The same crop and flip are applied to the depth.

    Args:
        rgb: sRGB in [0, 1], shape (3, H, W).
        depth: metres, 0 = hole, shape (1, H, W).
        params: from ``sampling.sample_params`` or ``sampling.fixed_params``.
        config: the remaining rendering options.
        generator: random source for the noise (same device as ``rgb``).
        noise_seed: seed of device-independent noise (``synth.noise``); takes precedence over ``generator``.

    Returns:
        ``(stack, depth)``: the stack and the ground-truth depth (1, H', W') after crop and flip, holes kept at 0.
    """
    rgb, depth = crop_flip(rgb, depth, params)
    if params.color_gains is not None:
        gains = torch.tensor(params.color_gains, device=rgb.device, dtype=rgb.dtype)[:, None, None]  # (3, 1, 1)
        rgb = linear_to_srgb(srgb_to_linear(rgb) * gains)
    cfg = replace(config, psf=params.psf, psf_power=params.psf_power, shot_noise=params.shot_noise,
                  read_noise=params.read_noise)
    fd = torch.tensor(params.focus_distances_m, dtype=torch.float64)
    exposure = None if params.exposure is None else torch.tensor(params.exposure, dtype=torch.float64)
    stack = render_stack(rgb, depth, params.camera, fd, config=cfg, exposure=exposure, generator=generator,
                         noise_seed=noise_seed)
    gt = torch.where(valid_depth(depth), depth, torch.zeros_like(depth))
    return stack, gt


def crop_flip(rgb: torch.Tensor, depth: torch.Tensor, params: SampleParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The crop and flip of ``params`` applied to colour and depth (the part of a sample a CPU worker prepares).

    Shape:
        rgb (3, H, W), depth (1, H, W) -> (3, h, w), (1, h, w)
    """
    if params.crop is not None:
        top, left, h, w = params.crop
        rgb, depth = rgb[:, top : top + h, left : left + w], depth[:, top : top + h, left : left + w]
    if params.flip:
        rgb, depth = rgb.flip(-1), depth.flip(-1)
    return rgb, depth
