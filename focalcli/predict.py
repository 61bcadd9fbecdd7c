"""Depth (and all-in-focus, confidence) for a stack folder or a folder of stack folders, written to files.

``predict(stack, method=...)`` returns a ``DepthResult`` in memory; ``predict_to_files`` adds the output
contract: every output path is checked before any work starts, and each file is written atomically.

Outputs beside the depth file ``D.ext``: ``D.json`` (units, method, focus distances: how to read the numbers) and,
on request, ``D_preview.png`` (turbo colour map), the all-in-focus image and the confidence map.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from focalcli.errors import ConfigError, InputError, OutputError
from focalcli.focus.depth import DepthResult
from focalcli.io.atomic import atomic_paths, check_output, check_writable, partial_folder, remove_partial_folders
from focalcli.io.depth import DEPTH_SUFFIXES, write_depth, write_preview
from focalcli.io.images import write_image
from focalcli.io.stack import StackFolder, find_stacks, is_stack_folder, scan_stack

__all__ = ["METHODS", "BatchPlan", "PredictOutputs", "is_batch_input", "plan_batch", "predict", "predict_batch",
           "predict_to_files"]

AIF_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
CONFIDENCE_SUFFIXES = (".npy", ".png", ".tif", ".tiff")
Progress = Callable[[int, int], None]
UNIT_NOTES = {
    "m": "depth in metres",
    "frame_index": "focus distances unknown: depth is in frame-index units, 1 = nearest frame, N = farthest",
    "relative": "focus distances unknown: depth is relative (right in order and shape, not in scale)",
}


def _classic(stack, *, aif: bool, progress: Progress | None = None, **options) -> DepthResult:
    from focalcli.focus.classic import depth_from_focus

    return depth_from_focus(stack, aif=aif, progress=progress, **options)


def _model(stack, *, aif: bool, progress: Progress | None = None, **options) -> DepthResult:
    from focalcli.learned import depth_from_model

    return depth_from_model(stack, aif=aif, progress=progress, **options)


# name -> callable(stack, *, aif, progress, **options) -> DepthResult
METHODS: dict[str, Callable[..., DepthResult]] = {"classic": _classic, "model": _model}


def predict(stack: StackFolder | str | os.PathLike, *, method: str = "classic", aif: bool = False,
            align: bool = False, progress: Progress | None = None, **options) -> DepthResult:
    """Depth of one stack.

    Args:
        stack: a stack folder path, a ``StackFolder`` or a ``FocalStack``.
        method: a key of ``METHODS``.
        aif: also compute the all-in-focus image.
        align: register the frames to the middle one first (``focalcli.align``; the outputs keep the frame size).
        progress: called with ``(done, total)``.
        **options: method options (classic: ``measure``, ``window``, ``smooth``; model: ``weights``, ``device``,
            ``precision``, ``max_size``).

    Raises:
        InputError: the stack cannot be read, or (``align``) a frame cannot be registered.
        ValueError: unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if isinstance(stack, str | os.PathLike):
        stack = scan_stack(stack)
    if align:
        from focalcli.align import align_stack

        stack = align_stack(stack, crop=False, progress=progress)
    return METHODS[method](stack, aif=aif, progress=progress, **options)


@dataclass(frozen=True)
class PredictOutputs:
    """Where the outputs of one stack go."""

    depth: Path
    aif: Path | None = None
    confidence: Path | None = None
    preview: bool = False

    @property
    def sidecar(self) -> Path:
        return self.depth.with_suffix(".json")

    @property
    def preview_path(self) -> Path:
        return self.depth.with_name(self.depth.stem + "_preview.png")

    def paths(self) -> dict[str, Path]:
        """Every requested output by kind (``depth``, ``metadata``, ``preview``, ``aif``, ``confidence``)."""
        paths = {"depth": self.depth, "metadata": self.sidecar, "preview": self.preview_path if self.preview else None,
                 "aif": self.aif, "confidence": self.confidence}
        return {k: v for k, v in paths.items() if v is not None}

    def check(self, overwrite: bool, *, folders_exist: bool = True) -> None:
        """Check every path before work starts (see ``check_output``).

        Args:
            overwrite: whether existing outputs may be replaced.
            folders_exist: check the output folders too (a batch creates each stack's folder when it is done).

        Raises:
            OutputError: a path is unusable.
        """
        allowed = {"depth": DEPTH_SUFFIXES, "aif": AIF_SUFFIXES, "confidence": CONFIDENCE_SUFFIXES}
        for kind, p in self.paths().items():
            if folders_exist:
                check_output(p, overwrite=overwrite, suffixes=allowed.get(kind))
            else:
                if kind in allowed and p.suffix.lower() not in allowed[kind]:
                    raise OutputError(f"{p}: unknown output extension {p.suffix or '(none)'!r}; use one of "
                                      f"{', '.join(allowed[kind])}")
                if p.is_dir():
                    raise OutputError(f"{p}: is a folder, expected a file name")
        paths = [p.resolve() for p in self.paths().values()]
        if len(set(paths)) != len(paths):
            raise OutputError("two outputs share one file name; give each output its own path")


def _write_confidence(path: Path, confidence: np.ndarray) -> None:
    """png: 16-bit, 65535 = 1; npy/tiff: float32 in [0, 1]."""
    if path.suffix.lower() == ".png":
        write_image(path, confidence, bit_depth=16)
    else:
        write_depth(path, confidence)


def _json_options(options: dict) -> dict:
    return {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in options.items() if v is not None}


def predict_to_files(stack: str | os.PathLike | StackFolder, outputs: PredictOutputs, *, method: str = "classic",
                     overwrite: bool = False, progress: Progress | None = None, stage: Path | None = None,
                     **options) -> dict:
    """Predict one stack and write its outputs: checked first, written together (``atomic_paths``).

    Every output is written to a temporary file and the files are renamed into place together at the end, so an
    error or interrupt leaves none of them (and never some without the others).

    Args:
        stage: a folder for the temporary files (a batch's staging folder); default: beside each output.

    Returns:
        A summary dict (stack, outputs, units, frames, size) for printing or ``--json``.
    """
    sf = stack if isinstance(stack, StackFolder) else scan_stack(stack)
    outputs.check(overwrite, folders_exist=stage is None)
    result = predict(sf, method=method, aif=outputs.aif is not None, progress=progress, **options)
    if outputs.confidence is not None and result.confidence is None:  # before anything is written
        raise ConfigError("this model gives no confidence map (the regression head has no choice among frames)")
    meta = {
        "stack": str(sf.path),
        "frames": sf.names,
        "width": sf.info.width,
        "height": sf.info.height,
        "method": method,
        "options": _json_options(options),
        "units": result.units,
        "focus_distances_m": list(sf.focus_distances_m) if sf.focus_distances_m else None,
        "depth_png_scale": 1000.0,
        "note": UNIT_NOTES[result.units],
    }
    paths = outputs.paths()
    with atomic_paths(list(paths.values()), stage=stage) as tmps:
        tmp = dict(zip(paths, tmps, strict=True))
        write_depth(tmp["depth"], result.depth)
        tmp["metadata"].write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if "preview" in tmp:
            write_preview(tmp["preview"], result.depth, result.confidence)
        if "aif" in tmp:
            write_image(tmp["aif"], result.aif, bit_depth=16 if sf.info.bit_depth > 8 else 8)
        if "confidence" in tmp:
            _write_confidence(tmp["confidence"], result.confidence)
    return {**meta, "outputs": {k: str(v) for k, v in paths.items()}}


@dataclass(frozen=True)
class BatchPlan:
    """One stack of a batch: its folder, its outputs, and whether a previous run already made them all."""

    stack: StackFolder
    outputs: PredictOutputs
    done: dict | None = None  # the summary of the complete earlier result (skipped), or None (to predict)

    def __iter__(self):  # (stack, outputs), as plan_batch returned before
        return iter((self.stack, self.outputs))


_IGNORED_OPTIONS = ("device",)  # options that do not change the result


def _finished(outputs: PredictOutputs, method: str, options: dict) -> dict | None:
    """The summary of a complete earlier result made the same way, or None when ``outputs`` hold none of it.

    Raises:
        OutputError: some outputs exist but not all, or they were made with another method or other options.
    """
    paths = outputs.paths()
    existing = [p for p in paths.values() if p.exists()]
    if not existing:
        return None
    try:
        meta = json.loads(outputs.sidecar.read_text(encoding="utf-8"))
        same = (meta.get("method") == method and {k: v for k, v in meta.get("options", {}).items()
                                                  if k not in _IGNORED_OPTIONS}
                == {k: v for k, v in _json_options(options).items() if k not in _IGNORED_OPTIONS})
    except (OSError, ValueError, AttributeError):
        same = False
    if len(existing) < len(paths) or not same:
        raise OutputError(f"{existing[0]}: exists already and is not the complete result of this command (use "
                          f"--overwrite to replace it)")
    return {**meta, "outputs": {k: str(v) for k, v in paths.items()}, "skipped": True}


def plan_batch(root: str | os.PathLike, out_dir: str | os.PathLike, *, depth_name: str = "depth.png",
               aif_name: str | None = None, confidence_name: str | None = None, preview: bool = False,
               method: str = "classic", overwrite: bool = False, options: dict | None = None) -> list[BatchPlan]:
    """Scan every stack folder inside ``root`` and check its outputs in ``out_dir/NAME/`` before any work.

    Nothing is created. A stack whose outputs all exist, made by the same method with the same ``options`` (its
    ``depth.json`` says so), is marked done and will be skipped: re-running an interrupted batch finishes it.

    Raises:
        InputError: ``root`` holds no stack folders, or one of them is invalid.
        OutputError: ``out_dir``'s parent is missing or not writable, or a stack's outputs exist only in part or
            were made differently (without ``overwrite``).
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    folders = find_stacks(root)
    if not folders:
        raise InputError(f"{root}: holds neither frames nor stack folders")
    if not out_dir.parent.is_dir():
        raise OutputError(f"{out_dir}: its parent folder {out_dir.parent} does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    plans = []
    for sf in (scan_stack(f) for f in folders):
        d = out_dir / sf.path.name
        if d.exists() and not d.is_dir():
            raise OutputError(f"{d}: exists and is not a folder")
        outputs = PredictOutputs(depth=d / depth_name, aif=d / aif_name if aif_name else None,
                                 confidence=d / confidence_name if confidence_name else None, preview=preview)
        outputs.check(overwrite, folders_exist=False)
        plans.append(BatchPlan(sf, outputs, None if overwrite else _finished(outputs, method, options or {})))
    check_writable(out_dir if out_dir.is_dir() else out_dir.parent)
    for plan in plans:
        if plan.outputs.depth.parent.is_dir():
            check_writable(plan.outputs.depth.parent)
    return plans


def predict_batch(plans: list[BatchPlan], *, method: str = "classic", overwrite: bool = False,
                  on_stack: Callable[[str, int, int], Progress | None] | None = None, **options) -> list[dict]:
    """Predict every planned stack (see ``plan_batch``) that is not done yet and write its outputs.

    Each stack is predicted into a staging folder ``OUT/.NAME.*.partial`` and its outputs are moved into ``OUT/NAME/``
    together, so ``OUT/NAME/`` only ever holds complete results; staging folders an earlier, killed run left are
    removed first. If the batch fails, the stacks finished before stay (a re-run skips them) and ``OUT`` is removed
    again if this call created it and nothing was finished.

    Args:
        on_stack: called with ``(name, index, count)`` before each stack; may return a per-frame progress callback.

    Returns:
        One summary per stack; stacks skipped as done have ``"skipped": True``.
    """
    plans = [p if isinstance(p, BatchPlan) else BatchPlan(*p) for p in plans]
    summaries = []
    out_dirs = {plan.outputs.depth.parent.parent for plan in plans}
    created = [d for d in out_dirs if not d.exists()]
    try:
        for d in created:
            d.mkdir()
        for i, plan in enumerate(plans):
            if plan.done is not None:
                summaries.append(plan.done)
                continue
            out_dir, name = plan.outputs.depth.parent.parent, plan.outputs.depth.parent.name
            remove_partial_folders(out_dir, name)
            progress = on_stack(plan.stack.path.name, i, len(plans)) if on_stack else None
            with partial_folder(out_dir, name) as stage:
                summaries.append(predict_to_files(plan.stack, plan.outputs, method=method, overwrite=overwrite,
                                                  progress=progress, stage=stage, **options))
    finally:
        for d in created:
            with contextlib.suppress(OSError):
                d.rmdir()  # only when nothing was finished (the folder is empty)
    return summaries


def is_batch_input(path: Path) -> bool:
    """A folder of stack folders (no frames of its own) is predicted as a batch."""
    return path.is_dir() and not is_stack_folder(path) and bool(find_stacks(path))
