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
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from focalcli.errors import ModelFileError
from focalcli.io.atomic import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "export_checkpoint", "load_checkpoint", "restore_rng", "rng_state", "save_checkpoint",
           "unwrap_model"]

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
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, struct.error, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path}: not a readable focal training checkpoint ({str(e).splitlines()[0]})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not a focal training checkpoint (expected format {CHECKPOINT_FORMAT})")
    return state


def export_checkpoint(path: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False,
                      trained_on: str | None = None) -> Path:
    """Turn a training checkpoint into an exported ``.safetensors`` model file (``focalcli.weights``).

    Args:
        path: a checkpoint written by ``focal train`` (``last.pt`` or ``best.pt``).
        out: the ``.safetensors`` file to write.
        overwrite: replace ``out`` when it exists.
        trained_on: text for the file's metadata; default: the training sources and the step count.

    Raises:
        ModelFileError: not a focal training checkpoint, or its weights do not fit its own config.
        OutputError: ``out`` exists (without ``overwrite``), has the wrong extension or no folder.
        ConfigError: the checkpoint's config is not one this focal can build.
    """
    from focalcli.io.atomic import check_output
    from focalcli.train.loop import build_train_model, config_from_dict
    from focalcli.weights import export_model

    check_output(out, overwrite=overwrite, suffixes=(".safetensors",))
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"], where=f"{path} config")
    model = build_train_model(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelFileError(f"{path}: weights do not fit the model its config describes ({first})") from e
    if trained_on is None:
        trained_on = f"focal train: {', '.join(cfg.data)}; {state['step']} steps of batch {cfg.batch_size}, " \
                     f"crop {cfg.crop}, seed {cfg.seed}"
    return export_model(model.eval(), out, trained_on=trained_on, overwrite=overwrite)
