"""Running a FocDepthFormer: inference with a chosen precision, and parameter counts per part."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from focalcli.errors import ConfigError
from focalcli.models.config import build_model

__all__ = ["PRECISIONS", "DepthPrediction", "autocast_context", "count_parameters", "parameters_by_part",
           "predict_depth"]

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class DepthPrediction:
    """A model's depth for a batch of stacks.

    Attributes:
        depth: ``(B, 1, H, W)`` float32; metres when ``metric``, else relative (see ``FocDepthFormer``).
        metric: whether the depth is metric for the stacks' own focus schedule.
    """

    depth: torch.Tensor
    metric: bool

    @property
    def units(self) -> str:
        return "m" if self.metric else "relative"


def autocast_context(device: torch.device, precision: str):
    """``torch.autocast`` for ``bf16``/``fp16`` on ``device`` (a no-op context for ``fp32``).

    Raises:
        ConfigError: unknown precision, or fp16 asked for on CPU (bf16 is the CPU's reduced precision).
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type == "cpu":
        raise ConfigError("fp16 is for GPUs; use --precision bf16 on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def predict_depth(model: nn.Module, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                  precision: str = "fp32") -> DepthPrediction:
    """Depth of a batch of stacks under ``torch.inference_mode`` (the model is put in eval mode).

    Args:
        model: the network, on the frames' device.
        frames: ``(B, N, 3, H, W)`` float32 in [0, 1], near to far.
        focus_distances_m: ``(B, N)`` metres, or None (relative output).
        precision: ``fp32``, ``bf16`` (autocast; CPU or GPU) or ``fp16`` (autocast; GPU only).

    Returns:
        ``DepthPrediction`` with float32 depth ``(B, 1, H, W)``.

    Raises:
        ShapeError, InputError: bad frames or focus distances.
        ConfigError: unknown precision.
    """
    model.eval()
    with torch.inference_mode(), autocast_context(frames.device, precision):
        depth = model(frames, focus_distances_m)
    return DepthPrediction(depth=depth.float(), metric=model.is_metric(focus_distances_m))


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (shared ones counted once)."""
    return sum(p.numel() for p in module.parameters())


def parameters_by_part(config) -> dict[str, int]:
    """Parameters of each part of a model (its ``parts()``: stem, encoder, fusion, decoder for FocDepthFormer) and
    the total, counted on the meta device (nothing is allocated)."""
    with torch.device("meta"):
        model = build_model(config)
    parts = {name: sum(count_parameters(m) for m in modules) for name, modules in model.parts().items()}
    parts["total"] = count_parameters(model)
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")
    return parts
