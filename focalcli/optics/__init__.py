"""Optics: thin-lens geometry and depth-dependent defocus (pure torch/numpy functions)."""

from focalcli.optics.defocus import PSFS, linear_to_srgb, psf_kernels, render_defocus, srgb_to_linear
from focalcli.optics.thinlens import (
    aperture_diameter,
    coc_diameter,
    coc_gain,
    coc_pixels,
    diopters,
    distance_from_diopters,
    pixel_pitch_um,
    schedule_depth_percentiles,
    schedule_fixed,
    schedule_random,
    schedule_uniform_diopters,
)

__all__ = [
    "PSFS",
    "aperture_diameter",
    "coc_diameter",
    "coc_gain",
    "coc_pixels",
    "diopters",
    "distance_from_diopters",
    "linear_to_srgb",
    "pixel_pitch_um",
    "psf_kernels",
    "render_defocus",
    "schedule_depth_percentiles",
    "schedule_fixed",
    "schedule_random",
    "schedule_uniform_diopters",
    "srgb_to_linear",
]
