"""A tree of stack folders: plan every stack's outputs before any work (``plan_batch``), skip what an earlier run
finished, and predict the rest through staging folders (``predict_batch``).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from focalcli.errors import InputError, OutputError
from focalcli.io.atomic import (
    check_output_tree,
    check_writable,
    partial_folder,
    remove_partial_folders,
)
from focalcli.io.stack import (
    StackFolder,
    find_stack_tree,
    is_stack_folder,
    scan_stack,
)
from focalcli.predict.outputs import PredictOutputs, _check_ply, _json_options
from focalcli.predict.run import Progress, Stage, predict_to_files


@dataclass(frozen=True)
class BatchPlan:
    """One stack of a batch: its folder, its outputs, and whether a previous run already made them all."""

    stack: StackFolder
    outputs: PredictOutputs
    done: dict | None = None  # the summary of the complete earlier result (skipped), or None (to predict)
    name: str = ""  # the stack's path relative to the batch root (its output folder's, relative to OUT)

    def __iter__(self):  # (stack, outputs), as plan_batch returned before
        return iter((self.stack, self.outputs))


class BatchPlans(list):
    """The plans of a batch (a list of ``BatchPlan``) and ``skipped``: the folders left out, as ``(folder relative
    to the batch root, why)``."""

    def __init__(self, plans=(), skipped=()):
        super().__init__(plans)
        self.skipped: list[tuple[str, str]] = list(skipped)


_IGNORED_OPTIONS = ("device",)  # options that do not change the result
# options whose default the sidecar once recorded as if given, and now leaves out (``--align-threshold``: 0.5 px,
# before it grew with the frame): that value counts as the default, so a batch resumes across the change (and an
# explicit 0.5 counts as the default too)
_FORMER_DEFAULTS = {"align_threshold_px": 0.5}


def _given(options: dict) -> dict:
    """The options that count when an earlier result is compared (``_finished``)."""
    return {k: v for k, v in options.items()
            if k not in _IGNORED_OPTIONS and not (k in _FORMER_DEFAULTS and v == _FORMER_DEFAULTS[k])}


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
        same = meta.get("method") == method and _given(meta.get("options", {})) == _given(_json_options(options))
    except (OSError, ValueError, AttributeError):
        same = False
    if len(existing) < len(paths) or not same:
        raise OutputError(f"{existing[0]}: exists already and is not the complete result of this command (use "
                          f"--overwrite to replace it)")
    return {**meta, "outputs": {k: str(v) for k, v in paths.items()}, "skipped": True}


def plan_batch(root: str | os.PathLike, out_dir: str | os.PathLike, *, depth_name: str | list[str] = "depth.png",
               aif_name: str | None = None, confidence_name: str | None = None, preview: bool = False,
               method: str = "classic", overwrite: bool = False, options: dict | None = None,
               ply_name: str | None = None, colormap: str = "turbo",
               depth_range: tuple[float, float] | None = None) -> BatchPlans:
    """Find every stack folder under ``root`` and check its outputs in ``out_dir/REL/`` before any work.

    Stacks are found recursively (``focalcli.io.stack.find_stack_tree``): a folder with frames is a stack, a
    folder of folders is searched (``out_dir`` itself never is). Each stack's outputs go to the same relative path
    under ``out_dir`` (``shoots/a/b`` -> ``OUT/a/b/depth.png``). Folders that are neither (empty, or with files but
    no frames) are listed in ``skipped`` with the reason; a stack folder that cannot be read is an error, as it
    would be alone.

    Nothing is created. A stack whose outputs all exist, made by the same method with the same ``options`` (its
    ``depth.json`` says so), is marked done and will be skipped: re-running an interrupted batch finishes it.

    Args:
        depth_name: the depth file name in each output folder, or several (``["depth.png", "depth.npy"]``).

    Raises:
        InputError: ``root`` holds no stack folders, or one of them is invalid.
        OutputError: ``out_dir`` cannot be created or written, or a stack's outputs exist only in part or were made
            differently (without ``overwrite``).
    """
    root, out_dir = Path(root), Path(out_dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    check_output_tree(out_dir, inputs=[root])
    folders, skipped = find_stack_tree(root, exclude=[out_dir])
    if not folders:
        why = f" ({len(skipped)} folder(s) left out: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise InputError(f"{root}: holds neither frames nor stack folders{why}")
    names = [depth_name] if isinstance(depth_name, str) else list(depth_name)
    plans = BatchPlans(skipped=skipped)
    for folder in folders:
        sf = scan_stack(folder)
        rel = folder.relative_to(root)
        d = out_dir / rel if rel.parts else out_dir
        for q in [d, *d.parents]:
            if q == out_dir.parent:
                break
            if q.exists() and not q.is_dir():
                raise OutputError(f"{q}: exists and is not a folder")
        outputs = PredictOutputs(depth=d / names[0], more_depths=tuple(d / n for n in names[1:]),
                                 aif=d / aif_name if aif_name else None,
                                 confidence=d / confidence_name if confidence_name else None, preview=preview,
                                 ply=d / ply_name if ply_name else None, colormap=colormap, depth_range=depth_range)
        outputs.check(overwrite, folders_exist=False)
        if outputs.ply is not None:
            _check_ply(sf)
        plans.append(BatchPlan(sf, outputs, None if overwrite else _finished(outputs, method, options or {}),
                               name=rel.as_posix() or root.name))
    for plan in plans:
        if plan.outputs.depth.parent.is_dir():
            check_writable(plan.outputs.depth.parent)
    return plans


def predict_batch(plans: list[BatchPlan], *, method: str = "classic", overwrite: bool = False,
                  on_stack: Callable[[str, int, int], Progress | None] | None = None,
                  on_stage: Stage | None = None, **options) -> list[dict]:
    """Predict every planned stack (see ``plan_batch``) that is not done yet and write its outputs.

    Each stack is predicted into a staging folder ``PARENT/.NAME.*.partial`` beside its output folder and its
    outputs are moved into ``PARENT/NAME/`` together, so an output folder only ever holds complete results; staging
    folders an earlier, killed run left are removed first. If the batch fails, the stacks finished before stay (a
    re-run skips them), and output folders this call created are removed again while they are empty.

    Args:
        on_stack: called with ``(name, index, count)`` before each stack; may return a per-frame progress callback.
        on_stage: told the name of each stage of each stack as it starts.

    Returns:
        One summary per stack; stacks skipped as done have ``"skipped": True``.
    """
    plans = [p if isinstance(p, BatchPlan) else BatchPlan(*p) for p in plans]
    summaries = []
    created: list[Path] = []  # folders this call made, parents first
    try:
        for i, plan in enumerate(plans):
            if plan.done is not None:
                summaries.append(plan.done)
                continue
            out, name = plan.outputs.depth.parent.parent, plan.outputs.depth.parent.name
            for q in reversed([out, *out.parents]):
                if not q.exists():
                    q.mkdir()
                    created.append(q)
            remove_partial_folders(out, name)
            progress = on_stack(plan.name or plan.stack.path.name, i, len(plans)) if on_stack else None
            with partial_folder(out, name) as stage:
                summaries.append(predict_to_files(plan.stack, plan.outputs, method=method, overwrite=overwrite,
                                                  progress=progress, stage=stage, on_stage=on_stage, **options))
    finally:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only when nothing was finished in it (the folder is empty)
    return summaries


def is_batch_input(path: Path) -> bool:
    """A folder with sub-folders but no frames of its own is predicted as a batch."""
    return path.is_dir() and not is_stack_folder(path) and any(
        p.is_dir() and not p.name.startswith(".") for p in path.iterdir())
