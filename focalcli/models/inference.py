"""Running a network with torch: inference with a chosen precision, device and compile mode; parameters per part."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from focalcli.errors import ConfigError, DeviceError
from focalcli.models.build import build_model
from focalcli.models.heads import frame_positions, soft_position
from focalcli.runtime import PRECISIONS, device_errors, ieee_fp32

__all__ = ["COMPILE_MODES", "PRECISIONS", "DepthPrediction", "autocast_context", "compile_mode", "count_parameters",
           "model_units", "parameters_by_part", "predict_depth"]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile modes


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
        ConfigError: unknown precision.
        DeviceError: fp16 asked for on a CPU (bf16 is the CPU's reduced precision).
    """
    return torch.autocast(device_type=device.type, dtype=_autocast_dtype(device, precision),
                          enabled=precision != "fp32")


def _autocast_dtype(device: torch.device, precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is for GPUs; use --precision bf16 on CPU")
    return torch.float16 if precision == "fp16" else torch.bfloat16


class _Runner(nn.Module):
    """The model's forward pass under the chosen autocast, without the value checks: what gets compiled."""

    def __init__(self, model: nn.Module, device_type: str, dtype: torch.dtype, enabled: bool):
        super().__init__()
        self.model, self.device_type, self.dtype, self.enabled = model, device_type, dtype, enabled

    def forward(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None):
        """``(depth (B, 1, H, W) float32, per-frame logits (B, N, H, W) or None)``."""
        enabled = self.enabled and self.device_type != "meta"  # meta (shapes only) has no autocast
        with torch.autocast(device_type=self.device_type if enabled else "cpu", dtype=self.dtype, enabled=enabled):
            out = self.model(frames, focus_distances_m, details=True, validate=False)
        return out["depth"].float(), out["logits"]


def compile_mode(compile: bool | str, device: torch.device) -> str | None:
    """The ``torch.compile`` mode for ``predict_depth(compile=...)``: None (eager) for False; for True
    ``reduce-overhead`` (CUDA graphs: fixed shapes, no launch overhead) on CUDA and ``default`` elsewhere; a string
    is taken as the mode itself.

    Raises:
        ConfigError: an unknown mode.
    """
    if compile is False or compile in ("", "none", "off"):
        return None
    if compile is True or compile == "auto":
        return "reduce-overhead" if device.type == "cuda" else "default"
    if compile not in COMPILE_MODES:
        raise ConfigError(f"unknown compile mode {compile!r}; use one of {', '.join(COMPILE_MODES)}")
    return compile


def _runner(model: nn.Module, device: torch.device, precision: str, mode: str | None):
    dtype = _autocast_dtype(device, precision)
    runner = _Runner(model, device.type, dtype, precision != "fp32")
    if mode is None:
        return runner
    cache = model.__dict__.setdefault("_compiled_runners", {})  # (device, precision, mode) -> compiled runner
    key = (str(device), precision, mode)
    if key not in cache:
        cache[key] = torch.compile(runner, mode=mode, dynamic=False)
    return cache[key]


def predict_depth(model: nn.Module, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                  precision: str = "fp32", compile: bool | str = False, with_weights: bool = False) -> DepthPrediction:
    """Depth of a batch of stacks under ``torch.inference_mode``, on the frames' device.

    The model is put in eval mode and moved to the frames' device (in place) if it is elsewhere; the focus
    distances follow the frames. Inputs are validated once here, so the forward pass itself has no host
    synchronisation (see ``FocDepthFormer.forward``).

    Args:
        model: the network (on any device; it ends on the frames' device).
        frames: ``(B, N, 3, H, W)`` float in [0, 1], near to far (computed in float32).
        focus_distances_m: ``(B, N)`` metres, or None (frame-index or relative output).
        precision: ``fp32`` (true float32: TF32 is off on GPUs, so GPU and CPU agree), ``bf16`` (autocast; CPU or
            GPU) or ``fp16`` (autocast; GPU only).
        compile: ``torch.compile`` the forward pass: False (eager), True (``reduce-overhead``, i.e. CUDA graphs, on
            CUDA; ``default`` elsewhere) or a mode name (see ``COMPILE_MODES``). Compiled once per model, device,
            precision and mode, and again for each new input shape: worth it for many stacks of one shape.
        with_weights: also return the softmax over frames (models with a soft-choice head).

    Returns:
        ``DepthPrediction`` with float32 depth ``(B, 1, H, W)`` on the frames' device.

    Raises:
        ShapeError, InputError: bad frames or focus distances.
        ConfigError: unknown precision or compile mode.
        DeviceError: fp16 on a CPU; the device ran out of memory.
    """
    device = frames.device
    mode = compile_mode(compile, device)
    runner = _runner(model, device, precision, mode)  # checks the precision before anything moves
    if frames.dtype != torch.float32:
        frames = frames.float()
    if focus_distances_m is not None:
        focus_distances_m = focus_distances_m.to(device=device, dtype=torch.float32)
    model.validate_inputs(frames, focus_distances_m)
    # dynamo traces the fusion LSTM only when allowed to (else it splits the graph there)
    tracing = torch._dynamo.config.patch(allow_rnn=True) if mode is not None else contextlib.nullcontext()
    with device_errors(device):
        if any(p.device != device for p in model.parameters()):
            model.to(device)  # outside inference mode: the moved weights stay usable for training
        model.eval()
        exact = ieee_fp32() if precision == "fp32" else contextlib.nullcontext()  # no TF32: matches the CPU
        with torch.inference_mode(), tracing, exact:
            if mode in ("reduce-overhead", "max-autotune") and device.type == "cuda":
                # CUDA graphs: a new run reuses the memory of the last run's outputs, so they are copied out
                torch.compiler.cudagraph_mark_step_begin()
                depth, logits = (None if t is None else t.clone() for t in runner(frames, focus_distances_m))
            else:
                depth, logits = runner(frames, focus_distances_m)
            weights = None
            if with_weights and logits is not None:
                B, N = frames.shape[:2]
                positions, _ = frame_positions(focus_distances_m, B, N, device)
                _, weights = soft_position(logits, positions, logit_bound=getattr(model.config, "logit_bound", 0.0))
    return DepthPrediction(depth=depth, units=model_units(model, focus_distances_m), weights=weights)


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
