"""Resume checkpoints: one torch dict per file, written atomically, read with ``weights_only=True``.

Contents: ``format`` (a marker that the file is ours), ``model`` and ``optimizer`` state dicts (the model
unwrapped from DDP and ``torch.compile`` first, so keys never carry ``module.`` or ``_orig_mod.``), ``step`` (the
next step to run), ``config`` (the resolved ``TrainConfig`` as a dict), ``seed``, ``best`` (best validation score so
far) and ``rng`` (torch CPU, CUDA, numpy and Python generator states).
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from focalcli.errors import ModelFileError
from focalcli.io.atomic import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "restore_rng", "rng_state", "save_checkpoint", "unwrap_model"]

CHECKPOINT_FORMAT = "focal-train-checkpoint/1"


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def rng_state() -> dict:
    """Every global generator's state, in types ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": random.getstate(),
    }


def restore_rng(state: dict) -> None:
    """Put back what ``rng_state`` saved (CUDA states only when the device count matches)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_checkpoint(path: str | os.PathLike, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    config: dict, seed: int, best: float | None = None) -> Path:
    """Write a resume checkpoint atomically (a crash mid-write leaves the previous file intact)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": int(step),
        "config": config,
        "seed": int(seed),
        "best": best,
        "rng": rng_state(),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint`` (never unpickles arbitrary objects).

    Raises:
        ModelFileError: missing, unreadable, or not a focal training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise ModelFileError(f"{path}: not a readable focal training checkpoint ({str(e).splitlines()[0]})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not a focal training checkpoint (expected format {CHECKPOINT_FORMAT})")
    return state
