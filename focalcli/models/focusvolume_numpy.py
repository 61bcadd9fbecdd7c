"""The FocusVolume network in numpy and OpenCV: the shipped model on a CPU without importing torch.

``focal predict`` on a CPU spends ~1.5 s just importing torch, longer than the whole prediction takes. This module
runs the same network (``focalcli.models.focusvolume.FocusVolumeNet``) from the same weights with numpy matrix
products and OpenCV filters; every layer is a twin of a torch operation: zero-padded 3x3 convolutions as one matrix
product over the nine shifted copies of the input (im2col) in channels-last layout, 1x1 convolutions as one product,
average pooling as block means, bilinear upsampling with half-pixel centres. ``tests/test_models_focusvolume.py``
checks the two agree.

The per-frame part (``frame_energies``) runs as each frame is decoded, so only the stride-4 volume is kept: memory
grows with N only by ``N x H/4 x W/4`` values per channel.

Shapes are channels-last: frames ``(H, W, 3)``, the volume ``(N, h, w, C)`` with ``h, w = H/4, W/4``.
"""

from __future__ import annotations

import cv2
import numpy as np

from focalcli.models.config import FocusVolumeConfig

__all__ = ["LOG_EPS", "FocusVolumeNumpy", "upsample"]

LOG_EPS = 1e-3  # floor of the log energies (8-bit quantisation noise is ~1e-3 of full scale)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    """Average over k x k blocks of the two axes before the last: ``(..., H, W, C) -> (..., H/k, W/k, C)``.

    Leading axes are folded into the rows (blocks never straddle two images, H being a multiple of k) and OpenCV's
    area resampling takes the exact block means, ~10x faster than a numpy mean over a reshaped view.
    """
    if k == 1:
        return x
    *lead, H, W, C = x.shape
    if C > 512:  # beyond OpenCV's channel limit
        return x.reshape(*lead, H // k, k, W // k, k, C).mean(axis=(-4, -2), dtype=np.float32)
    rows = int(np.prod(lead, dtype=np.int64)) * H
    flat = np.ascontiguousarray(x, np.float32).reshape(rows, W, C)
    out = cv2.resize(flat, (W // k, rows // k), interpolation=cv2.INTER_AREA)
    return out.reshape(*lead, H // k, W // k, C)


def upsample(x: np.ndarray, factor: int, axes: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling by an integer factor along two axes, as ``torch.nn.functional.interpolate(...,
    mode="bilinear", align_corners=False)``: sample ``i`` reads source position ``(i + 0.5) / factor - 0.5``,
    clamped at the first sample."""
    for axis in axes:
        n = x.shape[axis]
        src = np.maximum((np.arange(n * factor, dtype=np.float64) + 0.5) / factor - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
        i1 = np.minimum(i0 + 1, n - 1)
        shape = [1] * x.ndim
        shape[axis] = -1
        t = (src - i0).astype(np.float32).reshape(shape)
        x = np.take(x, i0, axis=axis) * (1 - t) + np.take(x, i1, axis=axis) * t
    return x


class _Conv:
    """A torch ``Conv2d`` (or the 1x1 frame taps) as channels-last matrix products."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None):
        out_channels, C, kh, kw = weight.shape
        self.k = kh
        self.taps = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))  # (kh, kw, C, O)
        self.side_by_side = np.ascontiguousarray(weight.transpose(1, 2, 3, 0).reshape(C, kh * kw * out_channels))
        self.bias = np.zeros(out_channels, np.float32) if bias is None else bias.astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(F, h, w, C) -> (F, h, w, O)`` with zero padding (``padding = k // 2``).

        A k x k convolution multiplies the padded input once by all k^2 taps side by side, ``(C, k^2 O)``, and sums
        the k^2 shifted output planes: the input is read once (gathering its k^2 shifted copies first, im2col,
        moves k^2 times the input through memory and measured ~1.5x slower here, channels being few).
        """
        F_, h, w, C = x.shape
        out_channels = self.bias.shape[0]
        if self.k == 1:
            return (x.reshape(-1, C) @ self.taps[0, 0]).reshape(F_, h, w, out_channels) + self.bias
        k, p = self.k, self.k // 2
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        Hp, Wp = h + 2 * p, w + 2 * p
        z = (xp.reshape(-1, C) @ self.side_by_side).reshape(F_, Hp, Wp, k * k, out_channels)
        out = np.empty((F_, h, w, out_channels), np.float32)
        out[...] = self.bias
        for dy in range(k):
            for dx in range(k):
                out += z[:, dy : dy + h, dx : dx + w, dy * k + dx]
        return out


def _frame_taps(z: np.ndarray) -> np.ndarray:
    """``(N, h, w, 3C) -> (N, h, w, C)``: ``W_0 x_{n-1} + W_1 x_n + W_2 x_{n+1}`` (zero beyond the ends)."""
    C = z.shape[-1] // 3
    out = z[..., C : 2 * C].copy()
    out[1:] += z[:-1, ..., :C]
    out[:-1] += z[1:, ..., 2 * C :]
    return out


class _Block:
    """``x + taps(relu(space(relu(x)))) + bias`` on ``(N, h, w, C)`` (see ``focusvolume._Block``)."""

    def __init__(self, w: dict[str, np.ndarray], prefix: str):
        self.space = _Conv(w[f"{prefix}.space.weight"], w[f"{prefix}.space.bias"])
        self.taps = _Conv(w[f"{prefix}.taps.weight"], None)
        self.bias = w[f"{prefix}.bias"].astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.taps(np.maximum(self.space(np.maximum(x, 0)), 0))
        return x + _frame_taps(y) + self.bias


class FocusVolumeNumpy:
    """A FocusVolume network from its config and weights (float arrays named as in the torch state dict).

    Use: pad each frame to a multiple of ``config.stride`` (edge replication), call ``frame_energies`` and
    ``frame_image`` per frame, then ``volume`` and ``position``; ``predict`` does all of it for a stream of frames.
    """

    def __init__(self, config: FocusVolumeConfig, weights: dict[str, np.ndarray]):
        w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.config = config
        self.filters = [(w[f"filters.{s}.weight"][:, 0], w[f"filters.{s}.bias"]) for s in range(config.scales)]
        L = len(config.widths)
        self.inp = _Conv(w["inp.weight"], w["inp.bias"])
        self.widen = [_Conv(w[f"widen.{i}.weight"], w[f"widen.{i}.bias"]) for i in range(L - 1)]
        self.down = [_Block(w, f"down.{i}") for i in range(L)]
        self.lateral = [_Conv(w[f"lateral.{i}.weight"], w[f"lateral.{i}.bias"]) for i in range(L - 1)]
        self.up = [_Block(w, f"up.{i}") for i in range(L - 1)]
        self.logit = _Conv(w["logit.weight"], w["logit.bias"])
        self.residual = _Conv(w["residual.weight"], w["residual.bias"])

    def predict(self, frames, positions: np.ndarray, *, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """Position on the focus axis of every pixel of a stack, streaming its frames.

        Args:
            frames: an iterable of ``(H, W, 3)`` float32 sRGB frames in [0, 1], near to far (any H, W: padded by
                edge replication to a multiple of ``config.stride``, cropped back).
            positions: ``(N,)`` diopters, or frame indices without focus distances.
            progress: optional ``progress(done, total)`` called after each frame.

        Returns:
            ``(position (H, W), top weight (H, W))`` as ``position`` returns them.
        """
        n, s = len(positions), self.config.stride
        energies, image, h, w = [], 0.0, 0, 0
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            pad = ((0, -h % s), (0, -w % s), (0, 0))
            padded = np.pad(frame, pad, mode="edge") if any(p[1] for p in pad) else frame
            energies.append(self.frame_energies(padded))
            image = image + self.frame_image(padded)
            if progress is not None:
                progress(i + 1, n)
        logits, residual = self.volume(np.stack(energies), (image / n).astype(np.float32), positions)
        position, top = self.position(logits, residual, positions)
        return position[:h, :w], top[:h, :w]

    def frame_energies(self, frame: np.ndarray) -> np.ndarray:
        """Learned focus measures of one frame: ``(H, W, 3)`` sRGB in [0, 1] (H, W multiples of 4) -> log
        energies ``(H/4, W/4, bands * scales)``."""
        gray = np.ascontiguousarray(frame, np.float32) @ _LUMA  # (H, W)
        out = []
        for s, (kernels, bias) in enumerate(self.filters):
            g = _pool(gray[..., None], 2**s)[..., 0] if s else gray  # (H / 2^s, W / 2^s)
            e = np.stack([cv2.filter2D(g, cv2.CV_32F, k, borderType=cv2.BORDER_CONSTANT) for k in kernels], -1)
            if s == 0:
                e = e[::2, ::2]  # the finest scale is evaluated every other pixel (a stride-2 convolution)
            e = np.abs(e + bias)  # (H / 2^max(s, 1), W / 2^max(s, 1), bands)
            out.append(_pool(e, 2) if s < 2 else e)
        return np.log(np.concatenate(out, axis=-1) + np.float32(LOG_EPS))

    @staticmethod
    def frame_image(frame: np.ndarray) -> np.ndarray:
        """The frame averaged to stride 4: ``(H, W, 3) -> (H/4, W/4, 3)``."""
        return _pool(np.asarray(frame, np.float32), 4)

    def volume(self, energies: np.ndarray, image: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, ...]:
        """The stack part: per-frame logits and the residual at the padded input size.

        Args:
            energies: ``(N, h, w, E)`` from ``frame_energies``.
            image: ``(h, w, 3)``, the mean over frames of ``frame_image``.
            positions: ``(N,)`` diopters or frame indices.

        Returns:
            ``(logits (N, 4h, 4w), residual (4h, 4w))`` before the bounded softmax (see ``soft_position``).
        """
        N, h, w, _ = energies.shape
        mean_e = energies.mean(axis=0, keepdims=True, dtype=np.float32)  # (1, h, w, E)
        sched = _schedule_features(positions)  # (N, 2)
        vol = np.concatenate([energies - mean_e, np.broadcast_to(mean_e, energies.shape),
                              np.broadcast_to(image, (N, h, w, 3)),
                              np.broadcast_to(sched[:, None, None, :], (N, h, w, 2))], axis=-1)
        vol = self.inp(np.ascontiguousarray(vol, np.float32))  # (N, h, w, C0)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                vol = self.widen[i - 1](_pool(vol, 2))
            vol = block(vol)
            skips.append(vol)
        for i in reversed(range(len(self.up))):
            vol = self.up[i](skips[i] + upsample(self.lateral[i](vol), 2, (1, 2)))
        act = np.maximum(vol, 0)  # (N, h, w, C0)
        logits = self.logit(act)[..., 0]  # (N, h, w)
        residual = self.residual(act.mean(axis=0, keepdims=True, dtype=np.float32))[0, ..., 0]  # (h, w)
        return upsample(logits, 4, (1, 2)), upsample(residual, 4, (0, 1))

    def position(self, logits: np.ndarray, residual: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Bounded softmax over frames times positions plus the residual (``focalcli.models.heads.soft_position``).

        Returns:
            ``(position (H, W), top weight (H, W))``: the position on the focus axis and each pixel's largest frame
            weight (how decided the network is).
        """
        b = self.config.logit_bound
        z = b * np.tanh(logits / np.float32(b))  # (N, H, W)
        z = np.exp(z - z.max(axis=0, keepdims=True))
        weights = z / z.sum(axis=0, keepdims=True)
        p = np.asarray(positions, np.float32)
        position = np.tensordot(p, weights, axes=(0, 0))  # (H, W)
        step = np.float32(np.abs(np.diff(p)).mean()) if len(p) > 1 else np.float32(1.0)
        position = position + np.float32(self.config.residual_bound) * np.tanh(residual) * max(step, 1e-6)
        return position.astype(np.float32), weights.max(axis=0)


def _schedule_features(positions: np.ndarray) -> np.ndarray:
    """``focusvolume.schedule_features`` for one stack: ``(N,) -> (N, 2)`` float32."""
    p = np.asarray(positions, np.float64)
    if len(p) == 1:
        return np.array([[0.5, 1.0]], np.float32)
    span = p[-1] - p[0]
    u = (p - p[0]) / (span if abs(span) >= 1e-9 else 1.0)
    step = np.abs(np.diff(p))
    local = np.concatenate([step[:1], (step[1:] + step[:-1]) / 2, step[-1:]])
    return np.stack([u, local / max(step.mean(), 1e-12)], axis=-1).astype(np.float32)
