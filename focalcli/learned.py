"""Depth from a trained FocDepthFormer for a whole stack (the ``model`` method of ``focal predict``).

The network runs at a working resolution (the long side at most ``max_size`` pixels, padded to the patch size by
the model); frames are decoded and downscaled one at a time, and the depth is resized back to the frames' size in
inverse depth, where defocus (and so the network's evidence) is linear.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np
import torch

from focalcli.errors import ModelFileError
from focalcli.focus.depth import DepthResult
from focalcli.io.stack import FocalStack, StackFolder

__all__ = ["default_weights", "depth_from_model", "load_cached"]


def default_weights() -> Path:
    """The weights shipped with focal for the default preset.

    Raises:
        ModelFileError: none ship with this install.
    """
    from focalcli.models.focdepthformer import DEFAULT_MODEL
    from focalcli.weights import shipped_weights

    path = shipped_weights(DEFAULT_MODEL)
    if path is None:
        raise ModelFileError(f"no weights for {DEFAULT_MODEL} ship with this install; pass --weights FILE "
                             "(made by focal train + focal export)")
    return path


@functools.lru_cache(maxsize=2)
def load_cached(path: str, device: str) -> torch.nn.Module:
    """``focalcli.weights.load_model`` once per (file, device): batch prediction loads the model once."""
    from focalcli.weights import load_model

    return load_model(path, device=device)


def _working_size(h: int, w: int, max_size: int) -> tuple[int, int]:
    s = min(1.0, max_size / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def _reduced_frames(stack: FocalStack | StackFolder, size: tuple[int, int], progress) -> torch.Tensor:
    """(N, 3, h, w) float32 frames at the working size, decoded and resized one at a time."""
    h, w = size
    if isinstance(stack, FocalStack):
        frames = stack.frames.float()
        if frames.shape[-2:] != (h, w):
            frames = torch.nn.functional.interpolate(frames, size=(h, w), mode="area")
        return frames
    out = []
    for i, (_, img) in enumerate(stack.iter_frames()):
        out.append(torch.from_numpy(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)).permute(2, 0, 1))
        if progress is not None:
            progress(i + 1, len(stack))
    return torch.stack(out)  # (N, 3, h, w)


def depth_from_model(stack: FocalStack | StackFolder, *, weights: str | os.PathLike | None = None,
                     device: str | torch.device = "cpu", precision: str = "fp32", max_size: int = 512,
                     aif: bool = False, progress=None) -> DepthResult:
    """Depth of one stack by a trained FocDepthFormer.

    Args:
        stack: a ``FocalStack`` or a ``StackFolder``.
        weights: a file written by ``focal export``; None uses the weights shipped with focal.
        device: where the network runs.
        precision: ``fp32``, ``bf16`` or ``fp16`` (GPU).
        max_size: longest side of the working resolution in pixels.
        aif: also fuse the all-in-focus image (classical pyramid fusion at full resolution).
        progress: called with ``(frames done, total)``.

    Returns:
        ``DepthResult`` at the frames' size; ``units`` is ``"m"`` when the model is focus-distance aware and the
        stack has focus distances, else ``"relative"``. ``confidence`` is None (the classic method has one).

    Raises:
        ModelFileError: no or a bad weights file.
    """
    from focalcli.models.inference import predict_depth

    path = Path(weights) if weights is not None else default_weights()
    model = load_cached(str(path), str(torch.device(device)))
    if isinstance(stack, FocalStack):
        (H, W), fd = stack.size, stack.focus_distances_m
    else:
        H, W = stack.info.height, stack.info.width
        fd = torch.tensor(stack.focus_distances_m, dtype=torch.float32) if stack.focus_distances_m else None
    frames = _reduced_frames(stack, _working_size(H, W, max_size), progress).to(device)
    fd = fd[None].to(device) if fd is not None else None  # (1, N)
    pred = predict_depth(model, frames[None], fd, precision=precision)  # (1, 1, h, w)
    inv = 1.0 / pred.depth.clamp_min(1e-6)
    inv = torch.nn.functional.interpolate(inv, size=(H, W), mode="bilinear", align_corners=False)
    depth = (1.0 / inv)[0, 0].cpu().numpy().astype(np.float32)
    fused = None
    if aif:
        from focalcli.focus.classic import all_in_focus

        fused = all_in_focus(stack)
    return DepthResult(depth=depth, confidence=None, units=pred.units, aif=fused)
