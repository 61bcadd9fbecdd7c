"""FocDepthFormer wiring: shapes for any N and size, batch independence, gradients, units, input checks."""

from __future__ import annotations

import pytest
import torch

from focalcli.errors import ConfigError, InputError, ShapeError
from focalcli.models import (
    ModelConfig,
    build_model,
    config_from_dict,
    default_focus_distances,
    get_config,
    preset_names,
)
from tests.models_common import micro, stack


@pytest.mark.parametrize("N", [1, 2, 5, 10, 17])
def test_output_shape_any_stack_length(N):
    model = micro(True)
    frames, fd = stack(2, N, 21, 35)
    with torch.no_grad():
        assert model(frames, fd).shape == (2, 1, 21, 35)
        assert model(frames).shape == (2, 1, 21, 35)


@pytest.mark.parametrize(("H", "W"), [(5, 7), (33, 17), (48, 31), (64, 64)])
@pytest.mark.parametrize("aware", [False, True])
def test_output_shape_odd_sizes(H, W, aware):
    model = micro(aware)
    frames, fd = stack(1, 3, H, W)
    with torch.no_grad():
        depth = model(frames, fd)
    assert depth.shape == (1, 1, H, W)
    assert torch.isfinite(depth).all() and (depth > 0).all()


def test_tiny_preset_forward_at_non_native_size():
    model = build_model("focdepthformer-tiny")
    frames, fd = stack(1, 4, 40, 56)
    with torch.no_grad():
        assert model(frames, fd).shape == (1, 1, 40, 56)


@pytest.mark.parametrize("aware", [False, True])
def test_batch_elements_do_not_interact(aware):
    model = micro(aware).eval()
    frames, fd = stack(3, 4, 32, 48)
    fd[1] = torch.tensor([0.3, 0.5, 0.9, 1.7])
    with torch.no_grad():
        together = model(frames, fd)
        alone = torch.cat([model(frames[i : i + 1], fd[i : i + 1]) for i in range(3)])
        changed = frames.clone()
        changed[0] = torch.rand(changed[0].shape, generator=torch.Generator().manual_seed(5))
        others = model(changed, fd)
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(others[1:], together[1:], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(others[0], together[0])


@pytest.mark.parametrize("aware", [False, True])
def test_gradients_reach_every_parameter(aware):
    model = micro(aware).train()
    frames, fd = stack(2, 4, 32, 32)
    model(frames, fd).mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert dead == []


def test_aware_depth_is_within_the_schedule_and_follows_it():
    model = micro(True).eval()
    frames, fd = stack(1, 5, 32, 32)
    with torch.no_grad():
        near = model(frames, fd)
        far = model(frames, fd * 3)
    assert float(near.min()) >= float(fd.min()) - 1e-5 and float(near.max()) <= float(fd.max()) + 1e-5
    # same frames, every focus distance 3x farther: depth moves with the schedule
    assert float(far.mean()) > 2 * float(near.mean())


def test_units_are_reported():
    aware, paper = micro(True), micro(False)
    fd = torch.ones(1, 3)
    assert aware.is_metric(fd) and not aware.is_metric(None)
    assert not paper.is_metric(fd)


def test_default_schedule_is_uniform_in_diopters():
    d = default_focus_distances(5, near_m=0.1, far_m=1.0)
    diopters = 1 / d
    assert torch.allclose(diopters[0], torch.tensor(10.0)) and torch.allclose(diopters[-1], torch.tensor(1.0))
    assert torch.allclose(diopters.diff(), torch.full((4,), -2.25))
    assert default_focus_distances(1, near_m=0.1, far_m=1.0).shape == (1,)


def test_bad_inputs_raise_focal_errors():
    model = micro(True)
    frames, fd = stack(1, 3, 16, 16)
    with pytest.raises(ShapeError, match="frames"):
        model(frames[:, :, :2])
    with pytest.raises(InputError, match="focus_distances_m"):
        model(frames, fd[:, :2])
    with pytest.raises(InputError, match="below"):
        model(frames, -fd)
    with pytest.raises(InputError, match="NaN"):
        model(frames, torch.full_like(fd, float("nan")))


def test_presets_build_and_configs_are_strict():
    assert {"focdepthformer-base", "focdepthformer-tiny"} <= set(preset_names())
    with pytest.raises(ConfigError, match="unknown model"):
        get_config("nope")
    cfg = get_config("focdepthformer-tiny")
    assert config_from_dict(cfg.to_dict()) == cfg
    assert config_from_dict({k: v for k, v in cfg.to_dict().items() if k != "arch"}) == cfg  # files before arch
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="width"):
        config_from_dict({**cfg.to_dict(), "width": "wide"})
    with pytest.raises(ConfigError, match="unknown arch"):
        config_from_dict({**cfg.to_dict(), "arch": "resnet"})
    with pytest.raises(ConfigError, match="heads"):
        ModelConfig(width=100, heads=3)
    with pytest.raises(dataclasses_frozen_error()):
        cfg.width = 1  # type: ignore[misc]


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError
