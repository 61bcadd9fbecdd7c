"""predict_depth: eval + inference mode, units flag, precision choices."""

from __future__ import annotations

import pytest
import torch

from focalcli.errors import ConfigError
from focalcli.models import ModelConfig, build_model, predict_depth
from tests.models_common import MICRO, stack


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
