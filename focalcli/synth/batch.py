"""Batches of training samples rendered on the training device: the GPU half of ``render.render_sample``.

A data-loader worker (CPU) decodes a scene, draws its ``SampleParams`` and applies the crop and flip
(``render.crop_flip``); the training process stacks the prepared samples and renders them in one call on its device
(``render_batch``): colour gains, optics, PSF, exposure and noise per sample, no Python loop over the batch. With
``noise_seed`` the noise is device-independent, so a sample is the same (to float rounding) whether a CPU worker
(``render_sample(..., noise_seed=s)``) or the GPU renders it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from focalcli.errors import ConfigError, InputError
from focalcli.optics.defocus import linear_to_srgb, srgb_to_linear
from focalcli.optics.thinlens import coc_gain
from focalcli.synth.render import SynthConfig, render_frames
from focalcli.synth.sampling import SampleParams

__all__ = ["batch_optics", "render_batch"]


def batch_optics(params: Sequence[SampleParams]) -> dict[str, torch.Tensor | list[str]]:
    """The per-sample render arguments of ``render_frames`` for a batch of sample parameters (CPU tensors).

    Focus distances are sorted near to far per sample (exposures follow them), as ``render_stack`` does.

    Returns:
        ``focus_distances`` (B, N) float64 metres, ``gain_px`` (B, N) float64, ``exposure`` (B, N) float64,
        ``color_gains`` (B, 3) float64, ``psf`` (B names), ``psf_power``, ``shot_noise``, ``read_noise`` (B,).

    Raises:
        InputError: the samples have different frame counts, or a focus distance is not beyond the focal length.
        ConfigError: a camera is incomplete.
    """
    counts = {len(p.focus_distances_m) for p in params}
    if len(counts) != 1:
        raise InputError(f"a batch needs one frame count, got {sorted(counts)}")
    fd, gain, exposure = [], [], []
    for p in params:
        cam = p.camera
        if cam.focal_length_mm is None or cam.f_number is None or cam.pixel_pitch_um is None:
            raise ConfigError(f"camera needs focal_length_mm, f_number and pixel_pitch_um, got {cam.to_json()}")
        d = torch.tensor(p.focus_distances_m, dtype=torch.float64)
        order = torch.argsort(d)
        d = d[order]
        f = cam.focal_length_mm / 1000.0
        if bool((d <= f).any()):
            raise InputError(f"focus distances must exceed the focal length ({f} m), got {d.tolist()}")
        fd.append(d)
        gain.append(coc_gain(d, f, cam.f_number) / (cam.pixel_pitch_um * 1e-6))
        e = torch.ones_like(d) if p.exposure is None else torch.tensor(p.exposure, dtype=torch.float64)[order]
        exposure.append(e)
    return {
        "focus_distances": torch.stack(fd), "gain_px": torch.stack(gain), "exposure": torch.stack(exposure),
        "color_gains": torch.tensor([p.color_gains or (1.0, 1.0, 1.0) for p in params], dtype=torch.float64),
        "psf": [p.psf for p in params], "psf_power": torch.tensor([p.psf_power for p in params], dtype=torch.float64),
        "shot_noise": torch.tensor([p.shot_noise for p in params], dtype=torch.float64),
        "read_noise": torch.tensor([p.read_noise for p in params], dtype=torch.float64),
    }


def render_batch(
    rgb: torch.Tensor,
    depth: torch.Tensor,
    params: Sequence[SampleParams],
    *,
    config: SynthConfig = SynthConfig(),
    noise_seed: torch.Tensor | Sequence[int] | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render a batch of prepared samples on the device of ``rgb`` (the GPU half of ``render_sample``).

    The inputs are already cropped and flipped (``crop_flip``, e.g. in CPU data-loader workers); colour gains,
    optics, PSF, exposure and noise come from each sample's ``params``. With the same ``noise_seed``, sample ``b``
    equals ``render_sample(..., noise_seed=noise_seed[b])`` (to float rounding) on any device.

    Args:
        rgb: sRGB in [0, 1], shape (B, 3, H, W).
        depth: metres, 0 = hole, shape (B, 1, H, W).
        params: one ``SampleParams`` per sample, all with the same frame count.
        config: the remaining rendering options (method, layers, bit depth).
        noise_seed: one int64 seed per sample (device-independent noise).
        generator: random source of the noise when no seeds are given.

    Returns:
        ``(frames, focus_distances)``: sRGB frames (B, N, 3, H, W), near to far, and their focus distances (B, N)
        float32 metres, both on the device of ``rgb``.
    """
    if len(params) != rgb.shape[0]:
        raise InputError(f"{len(params)} sample parameters for a batch of {rgb.shape[0]}")
    o = batch_optics(params)
    dev, dt = rgb.device, rgb.dtype
    gains = o["color_gains"].to(dev, dt)[:, :, None, None]  # (B, 3, 1, 1)
    has_gains = torch.tensor([p.color_gains is not None for p in params], device=dev)[:, None, None, None]
    rgb = torch.where(has_gains, linear_to_srgb(srgb_to_linear(rgb) * gains), rgb)  # as render_sample
    fd = o["focus_distances"].to(dev)
    frames = render_frames(rgb, depth, fd, o["gain_px"].to(dev), config=config, exposure=o["exposure"].to(dev),
                           generator=generator, psf=o["psf"], psf_power=o["psf_power"], shot_noise=o["shot_noise"],
                           read_noise=o["read_noise"], noise_seed=noise_seed)
    return frames, fd.float()
