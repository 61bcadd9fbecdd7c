"""Process-level helpers: seeding and device choice. No module-level state."""

from __future__ import annotations

import random

import numpy as np
import torch

from focalcli.errors import ConfigError

__all__ = ["resolve_device", "seed_everything"]


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
        ConfigError: the device is unknown or not available on this machine.
    """
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
