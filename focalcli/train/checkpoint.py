"""Resume checkpoints: one torch dict per file, written atomically, read with ``weights_only=True``.

Contents: ``format`` (a marker that the file is ours), ``model`` and ``optimizer`` state dicts (the model
unwrapped from DDP and ``torch.compile`` first, so keys never carry ``module.`` or ``_orig_mod.``), ``step`` (the
next step to run), ``config`` (the resolved ``TrainConfig`` as a dict), ``seed``, ``best`` (best validation score so
far) and ``rng`` (torch CPU, CUDA, numpy and Python generator states).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import struct
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from focalcli.errors import ConfigError, ModelFileError
from focalcli.io.atomic import atomic_path, check_output
from focalcli.train.config import build_train_model, config_from_dict
from focalcli.weights import export_model, unwrap_model

__all__ = ["CHECKPOINT_FORMAT", "export_checkpoint", "load_checkpoint", "restore_rng", "restore_training_state",
           "rng_state", "run_folder_guard", "save_checkpoint", "unwrap_model"]

CHECKPOINT_FORMAT = "focal-train-checkpoint/1"


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
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # torch's text advises weights_only=False, which focal never does
        text = str(e)
        tail = text.split("WeightsUnpickler error:", 1)[-1]
        detail = next((line.strip() for line in tail.splitlines() if line.strip()), type(e).__name__)
        raise ModelFileError(f"{path}: not a readable focal training checkpoint (refused by the weights-only "
                             f"loader: {detail}; focal never unpickles Python objects)") from e
    except (RuntimeError, EOFError, OSError, ValueError, struct.error, zipfile.BadZipFile,
            IndexError, KeyError, TypeError, AttributeError, ImportError, UnicodeDecodeError, RecursionError) as e:
        # torch.load on arbitrary bytes raises any of these (an empty file: IndexError); none runs code
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ModelFileError(f"{path}: not a readable focal training checkpoint ({detail})") from e
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not a focal training checkpoint (expected format {CHECKPOINT_FORMAT})")
    problem = _structure_problem(state)
    if problem:
        raise ModelFileError(f"{path}: damaged focal training checkpoint ({problem})")
    return state


def _structure_problem(state: dict) -> str | None:
    """What is missing or of the wrong type in a checkpoint dict (None when it has everything resuming reads)."""
    kinds = {"model": dict, "optimizer": dict, "step": int, "config": dict, "seed": int, "rng": dict}
    for key, kind in kinds.items():
        if key not in state:
            return f"no {key!r}"
        if not isinstance(state[key], kind) or isinstance(state[key], bool):
            return f"{key!r} is a {type(state[key]).__name__}, expected a {kind.__name__}"
    if state["step"] < 0:
        return f"'step' is {state['step']}"
    best = state.get("best")
    if best is not None and (isinstance(best, bool) or not isinstance(best, int | float)):
        return f"'best' is a {type(best).__name__}, expected a number or None"
    bad = [k for k, v in state["model"].items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        return f"'model' holds {bad[0]!r}, which is not a named tensor"
    optimizer = state["optimizer"]
    if not isinstance(optimizer.get("state"), dict) or not isinstance(optimizer.get("param_groups"), list):
        return "'optimizer' is not an optimiser state dict"
    rng = state["rng"]
    numpy_state = rng.get("numpy")
    if (not isinstance(rng.get("torch"), torch.Tensor) or not isinstance(rng.get("cuda"), list)
            or not isinstance(numpy_state, dict) or not isinstance(numpy_state.get("keys"), torch.Tensor)
            or not all(k in numpy_state for k in ("kind", "pos", "has_gauss", "gauss"))
            or not isinstance(rng.get("python"), tuple) or len(rng["python"]) != 3):
        return "'rng' is not a generator state"
    return None


def restore_training_state(state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                           where: str | os.PathLike = "checkpoint") -> None:
    """Put a checkpoint's model, optimiser and generator states back (``--resume``).

    Raises:
        ModelFileError: the states do not fit this model and optimiser, or the generator states are damaged.
    """
    try:
        unwrap_model(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"])
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError) as e:
        raise ModelFileError(f"{where}: cannot resume from it ({str(e).splitlines()[0]})") from e


RUN_FILES = ("config.json", "log.jsonl", "last.pt", "best.pt")


@contextlib.contextmanager
def run_folder_guard(run_dir: Path, *, resume: bool, main: bool = True) -> Iterator[None]:
    """Undo a fresh training run that fails before its first checkpoint.

    If the block raises (any error, Ctrl-C or SIGTERM) and ``run_dir/last.pt`` was not written by it, the run files
    the block created are removed, and ``run_dir`` (and its parent folders) too when the block created it and it is
    empty again. A resumed run, a run that saved a checkpoint, and files that were there before are left alone.
    """
    existed = run_dir.is_dir()
    missing = [q for q in [run_dir, *run_dir.absolute().parents] if not q.exists()]  # deepest first
    before = {name: _stamp(run_dir / name) for name in RUN_FILES} if existed else {}
    try:
        yield
    except BaseException:
        last = run_dir / "last.pt"
        if main and not resume and (not last.exists() or _stamp(last) == before.get("last.pt")):
            for name in RUN_FILES:
                if _stamp(run_dir / name) not in (None, before.get(name)):
                    with contextlib.suppress(OSError):
                        (run_dir / name).unlink()
            if not existed:
                for q in missing:
                    with contextlib.suppress(OSError):
                        q.rmdir()
        raise


def _stamp(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


def export_checkpoint(path: str | os.PathLike, out: str | os.PathLike, *, overwrite: bool = False,
                      trained_on: str | None = None) -> Path:
    """Turn a training checkpoint into an exported ``.safetensors`` model file (``focalcli.weights``).

    Args:
        path: a checkpoint written by ``focal train`` (``last.pt`` or ``best.pt``).
        out: the ``.safetensors`` file to write.
        overwrite: replace ``out`` when it exists.
        trained_on: text for the file's metadata; default: the training sources and the step count.

    Raises:
        ModelFileError: not a focal training checkpoint, a config this focal cannot build, or weights that do not
            fit the checkpoint's own config.
        OutputError: ``out`` exists (without ``overwrite``), has the wrong extension or no folder.
    """
    check_output(out, overwrite=overwrite, suffixes=(".safetensors",))
    state = load_checkpoint(path)
    try:
        cfg = config_from_dict(state["config"], where=f"{path} config")
        model = build_train_model(cfg)
    except ConfigError as e:  # the config is part of the file
        raise ModelFileError(str(e)) from e
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ModelFileError(f"{path}: weights do not fit the model its config describes ({first})") from e
    if trained_on is None:
        trained_on = f"focal train: {', '.join(cfg.data)}; {state['step']} steps of batch {cfg.batch_size}, " \
                     f"crop {cfg.crop}, seed {cfg.seed}"
    return export_model(model.eval(), out, trained_on=trained_on, overwrite=overwrite)
