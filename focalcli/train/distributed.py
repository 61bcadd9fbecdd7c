"""Distributed training under ``torchrun``: environment detection, process group set-up, rank-0 guard.

DDP is on only when torchrun's ``RANK`` is in the environment; otherwise everything runs in one process.
Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "barrier", "dist_info", "init_distributed", "shutdown_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0  # global rank
    local_rank: int = 0  # rank on this machine (picks the GPU)
    world_size: int = 1  # number of processes

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or "RANK" in os.environ

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, validates and saves."""
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (set by torchrun); one process when ``RANK`` is absent."""
    if "RANK" not in os.environ:
        return DistInfo()
    return DistInfo(rank=int(os.environ["RANK"]), local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                    world_size=int(os.environ.get("WORLD_SIZE", 1)))


def init_distributed(info: DistInfo, device: torch.device) -> torch.device:
    """Join the process group when running under torchrun; returns the device this rank uses.

    On CUDA each rank takes ``cuda:LOCAL_RANK``.
    """
    if not info.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", rank=info.rank,
                                world_size=info.world_size)
    return device


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in one process)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()


def shutdown_distributed(info: DistInfo) -> None:
    """Leave the process group (no-op in one process)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
