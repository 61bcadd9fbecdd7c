"""Depth (and all-in-focus, confidence) for a stack folder or a folder of stack folders, written to files.

``predict(stack, method=...)`` returns a ``DepthResult`` in memory; ``predict_to_files`` adds the output
contract: every output path is checked before any work starts, and each file is written atomically.

Outputs beside the depth file ``D.ext``: ``D.json`` (units, method, focus distances: how to read the numbers) and,
on request, ``D_preview.png`` (turbo colour map), the all-in-focus image and the confidence map.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from focalcli.errors import ConfigError, InputError, OutputError
from focalcli.focus.depth import DepthResult
from focalcli.io.atomic import atomic_path, check_output
from focalcli.io.depth import DEPTH_SUFFIXES, write_depth, write_preview
from focalcli.io.images import write_image
from focalcli.io.stack import StackFolder, find_stacks, is_stack_folder, scan_stack

__all__ = ["METHODS", "PredictOutputs", "is_batch_input", "plan_batch", "predict", "predict_batch", "predict_to_files"]

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

    def check(self, overwrite: bool) -> None:
        """Check every path before work starts (see ``check_output``).

        Raises:
            OutputError: a path is unusable.
        """
        check_output(self.depth, overwrite=overwrite, suffixes=DEPTH_SUFFIXES)
        check_output(self.sidecar, overwrite=overwrite)
        if self.preview:
            check_output(self.preview_path, overwrite=overwrite)
        if self.aif is not None:
            check_output(self.aif, overwrite=overwrite, suffixes=AIF_SUFFIXES)
        if self.confidence is not None:
            check_output(self.confidence, overwrite=overwrite, suffixes=CONFIDENCE_SUFFIXES)
        paths = [p.resolve() for p in (self.depth, self.sidecar, self.aif, self.confidence) if p is not None]
        if len(set(paths)) != len(paths):
            raise OutputError("two outputs share one file name; give each output its own path")


def _write_confidence(path: Path, confidence: np.ndarray) -> None:
    """png: 16-bit, 65535 = 1; npy/tiff: float32 in [0, 1]."""
    if path.suffix.lower() == ".png":
        write_image(path, confidence, bit_depth=16)
    else:
        write_depth(path, confidence)


def predict_to_files(stack: str | os.PathLike | StackFolder, outputs: PredictOutputs, *, method: str = "classic",
                     overwrite: bool = False, progress: Progress | None = None, **options) -> dict:
    """Predict one stack and write its outputs (checked first, written atomically).

    Returns:
        A summary dict (stack, outputs, units, frames, size) for printing or ``--json``.
    """
    sf = stack if isinstance(stack, StackFolder) else scan_stack(stack)
    outputs.check(overwrite)
    result = predict(sf, method=method, aif=outputs.aif is not None, progress=progress, **options)
    if outputs.confidence is not None and result.confidence is None:  # before anything is written
        raise ConfigError("this model gives no confidence map (the regression head has no choice among frames)")
    meta = {
        "stack": str(sf.path),
        "frames": sf.names,
        "width": sf.info.width,
        "height": sf.info.height,
        "method": method,
        "options": {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in options.items()
                    if v is not None},
        "units": result.units,
        "focus_distances_m": list(sf.focus_distances_m) if sf.focus_distances_m else None,
        "depth_png_scale": 1000.0,
        "note": UNIT_NOTES[result.units],
    }
    write_depth(outputs.depth, result.depth)
    with atomic_path(outputs.sidecar) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    written = {"depth": str(outputs.depth), "metadata": str(outputs.sidecar)}
    if outputs.preview:
        write_preview(outputs.preview_path, result.depth, result.confidence)
        written["preview"] = str(outputs.preview_path)
    if outputs.aif is not None:
        write_image(outputs.aif, result.aif, bit_depth=16 if sf.info.bit_depth > 8 else 8)
        written["aif"] = str(outputs.aif)
    if outputs.confidence is not None:
        _write_confidence(outputs.confidence, result.confidence)
        written["confidence"] = str(outputs.confidence)
    return {**meta, "outputs": written}


def plan_batch(root: str | os.PathLike, out_dir: str | os.PathLike, *, depth_name: str = "depth.png",
               aif_name: str | None = None, confidence_name: str | None = None, preview: bool = False,
               overwrite: bool = False) -> list[tuple[StackFolder, PredictOutputs]]:
    """Scan every stack folder inside ``root`` and check its outputs in ``out_dir/NAME/`` before any work.

    Creates ``out_dir`` and its per-stack folders (empty) once everything checks out.

    Raises:
        InputError: ``root`` holds no stack folders, or one of them is invalid.
        OutputError: ``out_dir``'s parent is missing, or an output exists without ``overwrite``.
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
        plans.append((sf, PredictOutputs(depth=d / depth_name, aif=d / aif_name if aif_name else None,
                                         confidence=d / confidence_name if confidence_name else None,
                                         preview=preview)))
    for _, plan in plans:
        for p in (plan.depth, plan.sidecar, plan.aif, plan.confidence):
            if p is not None and p.exists() and not overwrite:
                raise OutputError(f"{p}: exists already (use --overwrite to replace it)")
    out_dir.mkdir(exist_ok=True)
    for _, plan in plans:
        plan.depth.parent.mkdir(exist_ok=True)
        plan.check(overwrite)
    return plans


def predict_batch(plans: list[tuple[StackFolder, PredictOutputs]], *, method: str = "classic",
                  overwrite: bool = False, on_stack: Callable[[str, int, int], Progress | None] | None = None,
                  **options) -> list[dict]:
    """Predict every planned stack (see ``plan_batch``) and write its outputs.

    Args:
        on_stack: called with ``(name, index, count)`` before each stack; may return a per-frame progress callback.
    """
    summaries = []
    for i, (sf, plan) in enumerate(plans):
        progress = on_stack(sf.path.name, i, len(plans)) if on_stack else None
        summaries.append(predict_to_files(sf, plan, method=method, overwrite=overwrite, progress=progress, **options))
    return summaries


def is_batch_input(path: Path) -> bool:
    """A folder of stack folders (no frames of its own) is predicted as a batch."""
    return path.is_dir() and not is_stack_folder(path) and bool(find_stacks(path))
