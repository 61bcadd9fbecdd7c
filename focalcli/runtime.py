"""Process-level helpers: seeding and device choice. No module-level state; torch is imported only when needed."""

from __future__ import annotations

import os
import random
import sys

import numpy as np

from focalcli.errors import ConfigError

__all__ = ["cuda_possible", "resolve_device", "seed_everything"]


def cuda_possible() -> bool:
    """False when this machine certainly has no CUDA device, decided without importing torch (~1.5 s): on Linux
    the NVIDIA driver always creates ``/dev/nvidiactl``. Elsewhere (or with the node present) only torch can tell."""
    return not sys.platform.startswith("linux") or os.path.exists("/dev/nvidiactl")


def seed_everything(seed: int, rank: int = 0):
    """Seed Python, numpy and torch with ``seed + rank`` and return a CPU ``torch.Generator`` seeded the same way."""
    import torch

    s = int(seed) + int(rank)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)
    return torch.Generator().manual_seed(s)


def resolve_device(name: str = "auto"):
    """Turn ``auto``/``cpu``/``cuda``/``cuda:K``/``mps`` into a ``torch.device``; ``auto`` picks CUDA when available.

    Raises:
        ConfigError: the device is unknown or not available on this machine.
    """
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:K)") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} asked for, but MPS is not available on this machine")
    return device
