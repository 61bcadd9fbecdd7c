"""Depth from a trained model for a whole stack: the ``model`` method of ``focal predict``.

The model runs through ``focalcli.models.runner.ModelRunner`` -- the same code ``focal eval`` and training
validation use -- at a working resolution (the long side at most ``max_size`` px), and its depth comes back at the
frames' size. Without ``--weights`` the model shipped with focal (``focalcli/pretrained/``) is used. The
all-in-focus image, when asked for, is the classical pyramid fusion at full resolution.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from focalcli.errors import ConfigError, ModelFileError

__all__ = ["BACKENDS", "default_weights", "depth_from_model", "load_runner"]


def default_weights() -> Path:
    """The weights shipped with focal for the default preset.

    Raises:
        ModelFileError: none ship with this install.
    """
    from focalcli.models.config import DEFAULT_MODEL
    from focalcli.weights import shipped_weights

    path = shipped_weights(DEFAULT_MODEL)
    if path is None:
        raise ModelFileError(f"no weights for {DEFAULT_MODEL} ship with this install; pass --weights FILE "
                             "(made by focal train + focal export)")
    return path


BACKENDS = ("auto", "numpy", "torch")


@functools.lru_cache(maxsize=2)
def _cached_runner(path: str, stamp: tuple, device: str, precision: str, max_size: int, backend: str):
    """One runner per file version (``stamp``: size and modification time) and options."""
    from focalcli import weights
    from focalcli.models.runner import ModelRunner

    del stamp  # part of the cache key only: a file replaced in place is loaded again
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    cpu = device == "cpu"
    if backend == "numpy" and not (cpu and precision == "fp32"):
        raise ConfigError("the numpy backend runs on the CPU in fp32")
    if backend != "torch" and cpu and precision == "fp32":
        arch = weights.read_arch(path)
        if arch == "focusvolume":
            return ModelRunner(weights.load_numpy_model(path), precision=precision, max_size=max_size)
        if backend == "numpy":
            raise ConfigError(f"{path}: a {arch} model runs with the torch backend only")
    import torch

    model = weights.load_model(path, device=device)
    return ModelRunner(model, device=torch.device(device), precision=precision, max_size=max_size)


def load_runner(weights: str | os.PathLike | None = None, *, device="cpu", precision: str = "fp32",
                max_size: int = 512, backend: str = "auto"):
    """A ``ModelRunner`` for a model file (None: the shipped weights), loaded once per process and options (batch
    prediction and evaluation load the model once).

    ``backend``: ``auto`` runs a FocusVolume model on its numpy twin when it can (CPU, fp32: no torch import) and any
    other model with torch; ``numpy`` or ``torch`` force one.

    Raises:
        ModelFileError: no or a bad weights file. ConfigError: options the model cannot run with.
    """
    path = Path(weights) if weights is not None else default_weights()
    device = str(device)
    if device != "cpu":  # the CPU needs no check, and no torch for the numpy backend
        from focalcli.runtime import cuda_possible, resolve_device

        device = "cpu" if device == "auto" and not cuda_possible() else str(resolve_device(device))
    resolved = path.resolve()
    try:
        stat = resolved.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        stamp = ()  # a missing file: the loader says so
    return _cached_runner(str(resolved), stamp, device, precision, int(max_size), backend)


def depth_from_model(stack, *, weights: str | os.PathLike | None = None, device="cpu", precision: str = "fp32",
                     max_size: int = 512, backend: str = "auto", aif: bool = False, progress=None, runner=None):
    """Depth of one stack by a trained model.

    Args:
        stack: a ``FocalStack``, a ``StackFolder`` or any ``FrameSource`` (``io.stack``).
        weights: a file written by ``focal export``; None uses the weights shipped with focal.
        device: where the network runs (``auto``: CUDA when present, ``cpu``, ``cuda``, ``cuda:K``).
        precision: ``fp32``, ``bf16`` or ``fp16`` (GPU).
        max_size: longest side of the working resolution in pixels.
        backend: ``auto`` (numpy for the FocusVolume model on a CPU in fp32, else torch), ``numpy`` or ``torch``.
        aif: also fuse the all-in-focus image (classical pyramid fusion at full resolution).
        progress: called with ``(frames done, total)``.
        runner: a ``models.runner.ModelRunner`` already loaded (``load_runner``); the options above that load one
            are then unused.

    Returns:
        ``DepthResult`` at the frames' size: metres with focus distances, else frame-index units (1 = nearest
        frame, N = farthest); ``confidence`` is how decided the model's choice among the frames is.

    Raises:
        ModelFileError: no or a bad weights file.
        InputError: an unreadable stack.
    """
    if runner is None:
        runner = load_runner(weights, device=device, precision=precision, max_size=max_size, backend=backend)
    result = runner(stack, progress=progress)
    if aif:
        from focalcli.focus.classic import all_in_focus

        result.aif = all_in_focus(stack)
    return result
