"""predict_depth: eval + inference mode, units flag, precision choices."""

from __future__ import annotations

import pytest
import torch

from focalcli.errors import ConfigError, InputError
from focalcli.models import ModelConfig, build_model, predict_depth
from tests.models_common import MICRO, micro, stack


def test_predict_depth_reports_units_and_float32():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**MICRO, focus_distance_aware=True)).train()
    frames, fd = stack(1, 3, 32, 32)
    metric = predict_depth(model, frames, fd)
    index = predict_depth(model, frames, with_weights=True)
    assert not model.training
    assert metric.metric and metric.units == "m" and metric.depth.dtype == torch.float32
    assert not index.metric and index.units == "frame_index"  # without focus distances: classic's units
    assert float(index.depth.min()) >= 0.0 and float(index.depth.max()) <= 3 + 1  # 1 .. N, +- a spacing
    assert index.weights.shape == (1, 3, 32, 32)
    assert torch.allclose(index.weights.sum(dim=1), torch.ones(1, 32, 32))
    assert metric.depth.shape == (1, 1, 32, 32)
    regression = build_model(ModelConfig(**MICRO))
    assert predict_depth(regression, frames).units == "relative"


def test_bf16_stays_close_to_fp32():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**MICRO, focus_distance_aware=True))
    frames, fd = stack(1, 3, 32, 32)
    ref = predict_depth(model, frames, fd).depth
    low = predict_depth(model, frames, fd, precision="bf16").depth
    assert low.dtype == torch.float32
    assert float(((low - ref).abs() / ref).max()) < 0.02


def test_bad_precision():
    model = build_model(ModelConfig(**MICRO))
    frames, _ = stack(1, 2, 16, 16)
    with pytest.raises(ConfigError, match="unknown precision"):
        predict_depth(model, frames, precision="int4")
    with pytest.raises(ConfigError, match="bf16"):
        predict_depth(model, frames, precision="fp16")


def test_bf16_keeps_the_residual_stream_and_the_focus_head_in_float32():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**MICRO, focus_distance_aware=True)).eval()
    frames, fd = stack(1, 3, 32, 32)
    seen = {}
    model.encoder.register_forward_hook(lambda m, a, out: seen.__setitem__("encoder", out[-1].dtype))
    model.head.query.register_forward_hook(lambda m, a, out: seen.__setitem__("head", out.dtype))
    predict_depth(model, frames, fd, precision="bf16")
    assert seen == {"encoder": torch.float32, "head": torch.float32}


def test_predict_depth_moves_the_model_and_the_focus_distances_to_the_frames_device():
    model = micro(False)  # on the CPU
    frames, fd = stack(1, 3, 32, 32)
    pred = predict_depth(model, frames.to("meta"), fd, precision="bf16")  # meta: shapes and devices only
    assert pred.depth.device.type == "meta" and pred.depth.shape == (1, 1, 32, 32)
    assert pred.depth.dtype == torch.float32
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_moved_weights_stay_trainable():
    model = micro(False)
    frames, fd = stack(1, 2, 16, 16)
    predict_depth(model, frames.to("meta"), fd)  # moves the weights (outside inference mode)
    model.train()
    model(frames.to("meta"), fd.to("meta")).mean().backward()  # inference tensors among the weights would raise
    assert all(p.grad is not None for p in model.head.parameters())


def test_values_are_checked_once_outside_the_forward_pass():
    model = micro(True).eval()
    frames, fd = stack(1, 3, 16, 16)
    bad = torch.full_like(fd, float("nan"))
    with torch.no_grad():
        assert torch.isnan(model(frames, bad, validate=False)).all()  # no check (no host sync) inside
    with pytest.raises(InputError, match="NaN"):
        predict_depth(model, frames, bad)
    with pytest.raises(InputError, match="below"):
        predict_depth(model, frames, -fd)


def test_forward_is_one_graph_without_host_syncs():
    """``.item()``, ``nonzero`` or a value check in the forward pass would split the graph (and sync a GPU)."""
    import torch._dynamo as dynamo

    from focalcli.models.inference import _Runner

    model = micro(True).eval()
    frames, _ = stack(1, 3, 32, 32)
    with torch.inference_mode(), dynamo.config.patch(allow_rnn=True):
        explained = dynamo.explain(_Runner(model, "cpu", torch.bfloat16, True))(frames, None)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0), explained.break_reasons


def test_compile_option_compiles_once_per_mode(monkeypatch):
    calls = []

    def fake_compile(module, *, mode, dynamic):
        calls.append((mode, dynamic))
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = micro(True)
    frames, fd = stack(1, 2, 16, 16)
    eager = predict_depth(model, frames, fd).depth
    for _ in range(2):
        torch.testing.assert_close(predict_depth(model, frames, fd, compile=True).depth, eager)
    predict_depth(model, frames, fd, compile="max-autotune-no-cudagraphs")
    assert calls == [("default", False), ("max-autotune-no-cudagraphs", False)]
    with pytest.raises(ConfigError, match="compile mode"):
        predict_depth(model, frames, fd, compile="fastest")


def test_out_of_memory_becomes_one_line(monkeypatch):
    from focalcli.errors import DeviceError

    model = micro(True)
    frames, fd = stack(1, 2, 16, 16)

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of "
                                     "79.19 GiB of which 3.2 GiB is free.\nOf the allocated memory ...")

    monkeypatch.setattr(type(model), "forward", boom)
    with pytest.raises(DeviceError) as e:
        predict_depth(model, frames, fd)
    assert "\n" not in str(e.value) and "tried to allocate 20.00 GiB" in str(e.value) and e.value.exit_code == 4
