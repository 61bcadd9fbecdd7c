"""Process-level helpers: seeding, device choice and device errors, and worker pools that end with their parent.
No module-level state; torch is imported only where it is needed."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from focalcli.errors import ConfigError, DeviceError

if TYPE_CHECKING:
    import torch

__all__ = ["PRECISIONS", "cuda_possible", "device_errors", "die_with_parent", "ieee_fp32", "resolve_device",
           "seed_everything", "sync", "worker_pool"]

PRECISIONS = ("fp32", "bf16", "fp16")  # what a model may run in: float32, or bfloat16 / float16 autocast

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
        ConfigError: the device name is unknown.
        DeviceError: the device is not available on this machine (no CUDA, or no GPU number K).
    """
    import torch

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


def die_with_parent(parent_pid: int) -> None:
    """Worker-process initializer: end this process as soon as ``parent_pid`` ends, whatever ends it.

    On Linux the kernel kills the worker when its parent dies (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, so even
    ``kill -9`` of the parent leaves no worker behind); elsewhere a watchdog thread notices within half a second.
    SIGINT is ignored: Ctrl-C reaches the whole process group, and the parent, which got it too, stops the pool.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="focal-parent-watchdog").start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(1)


@contextlib.contextmanager
def worker_pool(processes: int) -> Iterator[multiprocessing.pool.Pool]:
    """A ``spawn`` process pool whose workers die with this process (``die_with_parent``).

    Leaving the block normally waits for the workers to finish; leaving it by an exception (an error, Ctrl-C,
    SIGTERM) terminates them at once, without draining the task queue.
    """
    pool = multiprocessing.get_context("spawn").Pool(processes, initializer=die_with_parent,
                                                       initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()


def _oom_types() -> tuple[type[BaseException], ...]:
    import torch

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
    import torch

    try:
        yield
    except _oom_types() as e:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise DeviceError(_oom_message(e, device)) from None


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA); a no-op elsewhere. For timings."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def ieee_fp32():
    """Full float32 matmuls and convolutions inside the block: no TF32 (cuDNN uses TF32 for float32 convolutions
    by default on Ampere and newer GPUs, ~1e-3 relative error), so float32 results on a GPU match the CPU's."""
    import torch

    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul
