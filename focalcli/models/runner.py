"""One way to run a trained model on a whole stack: what ``focal predict``, ``focal eval`` and training validation
all call, so evaluation scores exactly what ships.

A ``ModelRunner`` holds a network (a torch module, or the numpy twin of a FocusVolume network) with its device,
precision and working resolution, and turns a stack into a ``DepthResult`` at the frames' own size:

1. each frame is converted to float32 in [0, 1], area-resized so its long side is at most ``max_size`` px and
   brought to the first frame's mean brightness (frames are decoded one at a time from a ``StackFolder``; the
   numpy backend also computes its per-frame features as the frame arrives, so only stride-4 features are kept);
2. the network runs on the working-size stack with the stack's focus distances (or none);
3. depth is resized back to the frames' size in inverse depth (bilinear), where defocus -- and so the network's
   evidence -- is linear; frame-index depth is resized as it is.

Backends: the numpy twin of a FocusVolume network (on the CPU in float32: no torch import, the fastest start) or a
torch module (any architecture, any device and precision); ``focalcli.learned.load_runner`` picks one for a model
file. Units: metres with focus distances;
without them frame-index units (1 = nearest frame, N = farthest) for the focus-distance-aware models, relative depth
for the paper's regression head.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np

from focalcli.errors import ConfigError, InputError
from focalcli.io.depth import DepthResult
from focalcli.io.images import to_float
from focalcli.io.stack import FrameSource
from focalcli.runtime import PRECISIONS

__all__ = ["PRECISIONS", "ModelRunner", "working_size"]
Progress = Callable[[int, int], None]


def working_size(height: int, width: int, max_size: int) -> tuple[int, int]:
    """``(h, w)`` with the long side at most ``max_size`` (never upscaled)."""
    s = min(1.0, max_size / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWxC float32 -> (h, w) by area averaging (a no-op at the same size)."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)


def _working_frames(stack: FrameSource, size: tuple[int, int]) -> Iterator[np.ndarray]:
    """HxWx3 float32 frames in [0, 1] at the working size, near to far, one at a time, each brought to the first
    frame's mean brightness (clipped to [0, 1]).

    The networks were trained on stacks of one exposure; matching the frames' brightness helps them on every
    validation set, not only under exposure drift (``python -m focalcli.bench depth``, f2-n10-uniform AbsRel
    0.122 -> 0.117, f2-n10-drift 0.188 -> 0.162).
    """
    reference = None
    for i in range(len(stack)):
        frame = _resize(to_float(stack.frame(i, native=True)), size)
        level = max(float(frame.mean()), 1e-3)
        reference = level if reference is None else reference
        if level != reference:
            frame = np.clip(frame * np.float32(reference / level), 0.0, 1.0, dtype=np.float32)
        yield frame


def _to_full_size(depth: np.ndarray, size: tuple[int, int], metric: bool) -> np.ndarray:
    """Working-size depth -> the frames' size: bilinear in inverse depth (metres) or as it is (frame index)."""
    H, W = size
    if depth.shape == (H, W):
        return depth.astype(np.float32)
    if not metric:
        return cv2.resize(depth, (W, H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    inv = cv2.resize(1.0 / np.maximum(depth, 1e-6), (W, H), interpolation=cv2.INTER_LINEAR)
    return (1.0 / np.maximum(inv, 1e-9)).astype(np.float32)


def _confidence(top: np.ndarray, n: int) -> np.ndarray:
    """The largest frame weight rescaled to [0, 1]: 0 when all N frames weigh the same, 1 for a single frame."""
    if n < 2:
        return np.zeros_like(top, dtype=np.float32)
    return np.clip((top - 1.0 / n) / (1.0 - 1.0 / n), 0.0, 1.0).astype(np.float32)


class ModelRunner:
    """A trained network ready to predict whole stacks (module docstring).

    Args:
        model: a torch module (``FocDepthFormer``/``FocusVolumeNet``) or a ``FocusVolumeNumpy``.
        device: torch device for a torch module (ignored by the numpy twin).
        precision: ``fp32``, ``bf16`` or ``fp16`` (torch only; ``focalcli.runtime.PRECISIONS``).
        max_size: longest side of the working resolution (px).
    """

    def __init__(self, model, *, device="cpu", precision: str = "fp32", max_size: int = 512):
        if max_size < 8:
            raise ConfigError(f"the working resolution must be at least 8 px, got {max_size}")
        self.model, self.device, self.precision, self.max_size = model, device, precision, int(max_size)
        self.numpy = not hasattr(model, "state_dict")
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.numpy and precision != "fp32":
            raise ConfigError(f"the numpy backend runs in fp32, not {precision}; use the torch backend")

    @property
    def arch(self) -> str:
        return self.model.config.arch

    def units(self, metric_input: bool) -> str:
        """What the depth of a stack with (``metric_input``) or without focus distances is measured in."""
        if metric_input:
            aware = getattr(self.model.config, "focus_distance_aware", True)
            return "m" if aware else "relative"
        if self.arch == "focdepthformer" and not self.model.config.focus_distance_aware:
            return "relative"
        return "frame_index"

    def __call__(self, stack: FrameSource, *, progress: Progress | None = None) -> DepthResult:
        """Depth of one stack (a ``FocalStack``, a ``StackFolder`` or any ``FrameSource``) at the frames' size.

        Returns:
            ``DepthResult`` with ``confidence`` = how decided the softmax over frames is (None for the regression
            head), ``units`` as ``units`` says.

        Raises:
            InputError: a frame cannot be read, or bad focus distances.
        """
        n, (H, W), fd = len(stack), stack.size, stack.distances()
        if fd is not None and (len(fd) != n or not all(np.isfinite(fd)) or min(fd) <= 0):
            raise InputError(f"focus distances must be {n} positive finite numbers, got {fd}")
        size = working_size(H, W, self.max_size)
        frames = _working_frames(stack, size)
        run = self._run_numpy if self.numpy else self._run_torch
        depth, top = run(frames, n, size, fd, progress)
        units = self.units(fd is not None)
        confidence = None if top is None else _to_full_size(_confidence(top, n), (H, W), metric=False)
        return DepthResult(depth=_to_full_size(depth, (H, W), metric=units == "m"), confidence=confidence,
                           units=units)

    def _run_numpy(self, frames, n, size, fd, progress):
        positions = 1.0 / np.asarray(fd, np.float64) if fd is not None else np.arange(n, dtype=np.float64)
        position, top = self.model.predict(frames, positions, progress=progress)
        if fd is None:
            return position + 1.0, top
        floor = max(float(positions.min()) * 0.1, 1e-3)  # as heads.position_to_depth
        return 1.0 / np.maximum(position, floor), top

    def _run_torch(self, frames, n, size, fd, progress):
        import torch

        from focalcli.models.inference import predict_depth

        arrays = []
        for i, frame in enumerate(frames):
            arrays.append(torch.from_numpy(frame).permute(2, 0, 1))  # (3, h, w)
            if progress is not None:
                progress(i + 1, n)
        x = torch.stack(arrays)[None].to(self.device)  # (1, N, 3, h, w)
        focus = torch.tensor(fd, dtype=torch.float32, device=self.device)[None] if fd is not None else None
        pred = predict_depth(self.model, x, focus, precision=self.precision, with_weights=True)
        top = None if pred.weights is None else pred.weights[0].max(dim=0).values.float().cpu().numpy()
        return pred.depth[0, 0].float().cpu().numpy(), top

