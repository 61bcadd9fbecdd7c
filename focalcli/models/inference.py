"""Running a network with torch: inference with a chosen precision, and parameter counts per part."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from focalcli.errors import ConfigError
from focalcli.models.config import build_model
from focalcli.models.runner import PRECISIONS

__all__ = ["PRECISIONS", "DepthPrediction", "autocast_context", "count_parameters", "model_units",
           "parameters_by_part", "predict_depth"]



@dataclass(frozen=True)
class DepthPrediction:
    """A model's depth for a batch of stacks.

    Attributes:
        depth: ``(B, 1, H, W)`` float32, in ``units``.
        units: ``"m"``, ``"frame_index"`` (1 = nearest frame, N = farthest) or ``"relative"`` (regression head
            without focus distances).
        weights: the softmax over frames ``(B, N, H, W)`` when asked for and the model has one, else None.
    """

    depth: torch.Tensor
    units: str
    weights: torch.Tensor | None = None

    @property
    def metric(self) -> bool:
        return self.units == "m"


def model_units(model: nn.Module, focus_distances_m: torch.Tensor | None) -> str:
    """The units of ``model``'s depth for a call with or without focus distances (see ``DepthPrediction``)."""
    if model.is_metric(focus_distances_m):
        return "m"
    aware = getattr(model.config, "focus_distance_aware", True)
    return "frame_index" if aware and focus_distances_m is None else "relative"


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
                  precision: str = "fp32", with_weights: bool = False) -> DepthPrediction:
    """Depth of a batch of stacks under ``torch.inference_mode`` (the model is put in eval mode).

    Args:
        model: the network, on the frames' device.
        frames: ``(B, N, 3, H, W)`` float32 in [0, 1], near to far.
        focus_distances_m: ``(B, N)`` metres, or None (frame-index or relative output).
        precision: ``fp32``, ``bf16`` (autocast; CPU or GPU) or ``fp16`` (autocast; GPU only).
        with_weights: also return the softmax over frames (models with a soft-choice head).

    Returns:
        ``DepthPrediction`` with float32 depth ``(B, 1, H, W)``.

    Raises:
        ShapeError, InputError: bad frames or focus distances.
        ConfigError: unknown precision.
    """
    model.eval()
    with torch.inference_mode(), autocast_context(frames.device, precision):
        out = model.forward_train(frames, focus_distances_m)
    weights = None
    if with_weights and out["logits"] is not None:
        from focalcli.models.heads import soft_position

        bound = getattr(model.config, "logit_bound", 0.0)
        _, weights = soft_position(out["logits"], out["positions"], logit_bound=bound)
    return DepthPrediction(depth=out["depth"].float(), units=model_units(model, focus_distances_m), weights=weights)


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
