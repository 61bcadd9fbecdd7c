"""Synthesis stays bounded: blur never wider than the image can show, impossible optics refused."""

from __future__ import annotations

import pytest
import torch

from focalcli.errors import ConfigError
from focalcli.io.stack import Camera
from focalcli.synth.render import _diopter_limits, max_blur_px, render_stack
from focalcli.synthesize import SynthJob

CAM = Camera(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=560.0)  # 36 mm over 64 px


def _scene(depth_m: float, h: int = 48, w: int = 64):
    rgb = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))
    depth = torch.full((1, h, w), depth_m)
    depth[..., : w // 2] = 2.0
    depth[..., 0, 0] = 0.0  # a hole
    return rgb, depth


@pytest.mark.parametrize("depth_m", [1e-7, 1e-3])
def test_extreme_depth_renders_with_bounded_blur(depth_m):
    rgb, depth = _scene(depth_m)
    fd = torch.tensor([0.5, 2.0, 8.0])
    limits = _diopter_limits(depth, fd.double(), torch.full((3,), 2.2, dtype=torch.float64), max_blur_px(48, 64))
    assert limits is not None  # 1/depth is far beyond what any frame can show
    stack = render_stack(rgb, depth, CAM, fd)  # before: 17 PB (1e-7 m) or 1.4 GB (1 mm) asked for
    near = stack.frames[:, :, 4:-4, 36:-4]  # the too-near half: a blur wider than the image, i.e. a flat average
    assert torch.isfinite(stack.frames).all()
    assert near.std(dim=(-1, -2)).max() < 0.02


def test_normal_scenes_take_the_batched_path_unchanged():
    rgb, depth = _scene(4.0)
    assert _diopter_limits(depth, torch.tensor([1.0, 3.0], dtype=torch.float64),
                           torch.full((2,), 2.2, dtype=torch.float64), max_blur_px(48, 64)) is None


def test_impossible_optics_are_config_errors():
    rgb, depth = _scene(4.0)
    with pytest.raises(ConfigError, match="impossible"):
        render_stack(rgb, depth, Camera(focal_length_mm=500.0, f_number=0.1, pixel_pitch_um=560.0),
                     torch.tensor([2.0]))
    with pytest.raises(ConfigError, match="impossible"):
        SynthJob(f_number=0.1, focal_length_mm=500.0)
    with pytest.raises(ConfigError, match="beyond the focal length"):
        SynthJob(schedule="uniform:0.01,8")
    with pytest.raises(ConfigError, match="finite"):
        SynthJob(f_number=float("nan"))
