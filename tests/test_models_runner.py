"""ModelRunner: one inference path for predict, eval and validation; numpy and torch backends agree."""

import numpy as np
import pytest
import torch

from focalcli.io.stack import FocalStack, scan_stack
from focalcli.learned import load_runner
from focalcli.models import FocusVolumeConfig, build_model
from focalcli.models.runner import working_size
from focalcli.weights import export_model
from tests.conftest import write_frames

CONFIG = FocusVolumeConfig(bands=4, scales=3, widths=(6, 8, 10))


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return export_model(model, tmp_path_factory.mktemp("w") / "fv.safetensors")


def _stack(n=4, h=50, w=70, focus=True):
    g = torch.Generator().manual_seed(n)
    frames = torch.rand(n, 3, h, w, generator=g)
    fd = 1 / torch.linspace(2.0, 0.5, n) if focus else None
    return FocalStack(frames=frames, focus_distances_m=fd)


def test_working_size():
    assert working_size(480, 640, 512) == (384, 512)
    assert working_size(100, 80, 512) == (100, 80)  # never upscaled


@pytest.mark.parametrize("focus", [True, False])
def test_numpy_and_torch_backends_agree(weights, focus):
    stack = _stack(focus=focus)
    fast = load_runner(weights, device="cpu", backend="numpy", max_size=48)
    slow = load_runner(weights, device="cpu", backend="torch", max_size=48)
    assert fast.numpy and not slow.numpy
    a, b = fast(stack), slow(stack)
    assert a.units == b.units == ("m" if focus else "frame_index")
    assert a.depth.shape == b.depth.shape == (50, 70)  # back at the frames' size
    assert np.allclose(a.depth, b.depth, rtol=1e-4)
    assert np.allclose(a.confidence, b.confidence, atol=1e-4)


def test_folder_and_memory_give_the_same_depth(weights, tmp_path):
    """predict streams a StackFolder, eval passes frames in memory: both go through the same resizing."""
    stack = _stack()
    frames = stack.frames.permute(0, 2, 3, 1).numpy()
    folder = write_frames(tmp_path / "s", frames, focus=stack.focus_distances_m.numpy(), bit_depth=16)
    runner = load_runner(weights, device="cpu", max_size=48)
    from_disk = runner(scan_stack(folder)).depth
    in_memory = runner(FocalStack(frames=torch.from_numpy(np.round(frames * 65535) / 65535).permute(0, 3, 1, 2),
                                  focus_distances_m=stack.focus_distances_m)).depth
    assert np.allclose(from_disk, in_memory, rtol=1e-5)


def test_refuses_what_the_backend_cannot_do(weights):
    from focalcli.errors import ConfigError

    with pytest.raises(ConfigError, match="numpy backend"):
        load_runner(weights, device="cpu", backend="numpy", precision="bf16")
    with pytest.raises(ConfigError, match="unknown backend"):
        load_runner(weights, device="cpu", backend="jax")


def test_working_depth_is_resized_back_in_inverse_depth():
    from focalcli.models.runner import _to_full_size

    # a ramp linear in diopters from 0.5 to 2.5 D at the working size, resized to 2x: still linear in diopters
    diopters = np.linspace(0.5, 2.5, 64, dtype=np.float32)[None].repeat(8, 0)  # (8, 64)
    full = _to_full_size(1.0 / diopters, (16, 128), metric=True)
    assert full.shape == (16, 128)
    inner = 1.0 / full[:, 4:-4]  # away from the clamped borders
    steps = np.diff(inner, axis=1)
    assert np.allclose(steps, steps.mean(), rtol=1e-3)  # bilinear in metres would bend the diopter ramp
    assert np.allclose(1.0 / full[0, [1, -2]], [0.5, 2.5], atol=0.04)
    # frame-index depth is resized as it is
    idx = np.linspace(1, 10, 64, dtype=np.float32)[None].repeat(8, 0)
    assert np.allclose(np.diff(_to_full_size(idx, (16, 128), metric=False)[:, 4:-4], axis=1), 9 / 63 / 2, rtol=1e-3)


def test_frames_are_brought_to_the_first_frames_brightness(weights):
    """Exposure drift between frames does not reach the network: each frame is scaled to the first one's mean."""
    stack = _stack()
    darker = stack.frames * torch.tensor([1.0, 0.7, 0.85, 0.6])[:, None, None, None]  # no clipping
    drifting = FocalStack(frames=darker, focus_distances_m=stack.focus_distances_m)
    runner = load_runner(weights, device="cpu", max_size=48)
    assert np.allclose(runner(drifting).depth, runner(stack).depth, rtol=1e-3)
    from focalcli.models.runner import _working_frames

    means = [float(f.mean()) for f in _working_frames(drifting, (50, 70))]
    assert np.allclose(means, means[0], rtol=1e-3)  # up to the few values clipped at 1
