"""Process-level helpers: seeding, device choice and device errors. No module-level state."""

from __future__ import annotations

import contextlib
import random
import re

import numpy as np
import torch

from focalcli.errors import ConfigError, DeviceError

__all__ = ["device_errors", "ieee_fp32", "resolve_device", "seed_everything", "sync"]


def seed_everything(seed: int, rank: int = 0) -> torch.Generator:
    """Seed Python, numpy and torch with ``seed + rank`` and return a CPU generator seeded the same way."""
    s = int(seed) + int(rank)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:K``/``mps`` into a device; ``auto`` picks CUDA when available.

    Raises:
        ConfigError: the device name is unknown.
        DeviceError: the device is not available on this machine (no CUDA, or no GPU number K).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:K)") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name!r} asked for, but CUDA is not available on this machine")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r} does not exist: this machine has {count} CUDA device"
                              f"{'s' if count != 1 else ''} (cuda:0{f' .. cuda:{count - 1}' if count > 1 else ''})")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} asked for, but MPS is not available on this machine")
    return device


def _oom_types() -> tuple[type[BaseException], ...]:
    kinds = {getattr(torch, "OutOfMemoryError", None), getattr(torch.cuda, "OutOfMemoryError", None)}
    return tuple(k for k in kinds if k is not None)


def _oom_message(error: BaseException, device: torch.device | str | None) -> str:
    """One line from torch's (multi-line) out-of-memory message."""
    text = " ".join(str(error).split())
    asked = re.search(r"[Tt]ried to allocate ([\d.]+ ?[KMGT]?i?B)", text)
    total = re.search(r"total capacity of ([\d.]+ ?[KMGT]?i?B)", text)
    where = f" on {device}" if device is not None else ""
    detail = ", ".join(x for x in (asked and f"tried to allocate {asked.group(1)}",
                                   total and f"the device has {total.group(1)}") if x)
    return (f"out of memory{where}{f' ({detail})' if detail else ''}: use smaller inputs (--max-size, --crop), "
            "a smaller --batch-size, or --precision bf16")


@contextlib.contextmanager
def device_errors(device: torch.device | str | None = None):
    """Turn an out-of-memory error raised inside the block into a one-line ``DeviceError``.

    The cached GPU memory is released first, so the process can go on (e.g. with a smaller input).
    """
    try:
        yield
    except _oom_types() as e:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise DeviceError(_oom_message(e, device)) from None


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op elsewhere. For timings."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def ieee_fp32():
    """Full float32 matmuls and convolutions inside the block: no TF32 (cuDNN uses TF32 for float32 convolutions
    by default on Ampere and newer GPUs, ~1e-3 relative error), so float32 results on a GPU match the CPU's."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul
