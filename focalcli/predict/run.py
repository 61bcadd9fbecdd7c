"""Running one stack: decide on alignment, run a method, write the outputs together (``predict``, ``predict_to_files``,
``fuse_to_file``).

What the outputs are called, what they may be and what the sidecar records is ``focalcli.predict.outputs``; a tree of
stacks is ``focalcli.predict.batch``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from focalcli.errors import ConfigError, InputError
from focalcli.io.atomic import (
    atomic_paths,
    check_output,
)
from focalcli.io.depth import DepthResult, write_depth, write_preview
from focalcli.io.images import write_image
from focalcli.io.stack import (
    FrameSource,
    KeptFrames,
    StackFolder,
    as_stack_folder,
    covered,
    keep_frames,
    scan_stack,
)
from focalcli.predict.outputs import (
    AIF_SUFFIXES,
    INVALID_NOTE,
    UNIT_NOTES,
    PredictOutputs,
    _check_ply,
    _json_options,
    _write_confidence,
    _write_ply,
    model_file_record,
)

ALIGN_MODES = ("auto", "on", "off")
UNCOVERED_MODES = ("fill", "invalid")  # ``predict(uncovered=)``: pixels that not every aligned frame covers
RANGE_NOTE_SHARE = 0.25  # ``range_notes``: share of the confident pixels on an end plane that earns a note
Progress = Callable[[int, int], None]
Stage = Callable[[str], None]  # told the name of each stage as it starts ("checking alignment", "depth", ...)


def _classic(stack, *, aif: bool, progress: Progress | None = None, **options) -> DepthResult:
    from focalcli.focus.classic import depth_from_focus

    return depth_from_focus(stack, aif=aif, progress=progress, **options)


def _model(stack, *, aif: bool, progress: Progress | None = None, **options) -> DepthResult:
    from focalcli.learned import depth_from_model

    return depth_from_model(stack, aif=aif, progress=progress, **options)


# name -> callable(stack, *, aif, progress, **options) -> DepthResult
METHODS: dict[str, Callable[..., DepthResult]] = {"classic": _classic, "model": _model}


def _align_mode(align: str | bool) -> str:
    if align is True or align is False:  # the boolean of older versions
        return "on" if align else "off"
    if align not in ALIGN_MODES:
        raise ValueError(f"unknown align mode {align!r}; use one of {', '.join(ALIGN_MODES)}")
    return align


def align_for_prediction(stack: FrameSource, align: str | bool = "auto", *,
                         threshold_px: float | None = None, progress: Progress | None = None,
                         on_stage: Stage | None = None) -> tuple[FrameSource, dict]:
    """The stack a method should see, aligned or not, and the record of that decision (the sidecar's ``align``).

    Args:
        stack: the input stack.
        align: ``"auto"`` (align when ``focalcli.align.check_alignment`` finds the frames move by more than
            ``threshold_px``), ``"on"`` or ``"off"`` (True/False are taken as on/off).
        threshold_px: the auto threshold in full-resolution pixels (None: ``focalcli.align.check.THRESHOLD_PX``,
            0.5 px for frames of 640 px, growing with larger frames: ``focalcli.align.check.size_factor``).
        progress: called with ``(done, total)`` per registration/warping pass.
        on_stage: told ``"checking alignment"``, ``"registering"`` and ``"warping"`` as they start.

    Returns:
        ``(stack, record)``: the input's frames as they are when not aligned (so the result is bit for bit what
        ``"off"`` gives; a small stack read from disk comes as ``io.stack.KeptFrames``, its frames decoded once for
        every pass), else a ``focalcli.align.WarpedStack`` (frames warped as they are read; ``cover(i)`` marks the
        pixels frame ``i`` covers, ``to_focal_stack()`` gives a ``FocalStack`` with ``coverage``). ``record`` has
        ``mode``, ``applied``, ``reason``, the quick check (``check``: misalignment, threshold, per-frame
        transforms and scores) and, when applied, ``registration`` (model, reference, every frame's matrix, scale,
        score and colour correction).

    Raises:
        InputError: ``"on"`` and a frame cannot be registered (``"auto"`` then predicts without alignment and says
            why in the record).
    """
    mode = _align_mode(align)
    record: dict = {"mode": mode, "applied": False}
    if mode == "off":
        record["reason"] = "not aligned: --align off"
        return stack, record
    stack = keep_frames(stack)  # the check, registration and the method read the same frames: decode each once
    if mode == "auto":
        from focalcli.align.check import check_alignment

        if on_stage is not None:
            on_stage("checking alignment")
        check = check_alignment(stack, threshold_px=threshold_px)
        record["check"] = check.to_json()
        record["reason"] = check.reason
        if not check.needed:
            _last_pass(stack)
            return stack, record
    from focalcli.align.stack import register_lazily

    if on_stage is not None:
        on_stage("registering")
    try:
        aligned = register_lazily(stack, progress=progress)
    except InputError as e:
        if mode == "on":
            raise
        record["reason"] = f"not aligned: registration failed ({e}); use --align off, or focal align --skip-bad"
        _last_pass(stack)
        return stack, record
    record.update(applied=True, registration=aligned.registration.to_json())
    if mode == "on":
        record["reason"] = "aligned: --align on"
    _last_pass(stack)
    return aligned, record


def _last_pass(stack: FrameSource) -> None:
    """The method's pass over ``stack`` reads each frame once and is the last (``KeptFrames.last_pass``)."""
    if isinstance(stack, KeptFrames):
        stack.last_pass()


def fill_uncovered(depth: np.ndarray, invalid: np.ndarray, units: str) -> np.ndarray:
    """Depth at ``invalid`` pixels from the valid ones around them: a push-pull pyramid (``focus.depth.push_pull``)
    on inverse depth for metres, on the frame index otherwise (the axes where depth from focus is linear).

    Shape:
        ``depth`` and ``invalid``: ``(H, W)``; returns a new ``(H, W)`` float32 map.
    """
    from focalcli.focus.depth import push_pull

    known = ~invalid & np.isfinite(depth) & (depth > 0)
    if known.all() or not known.any():
        return depth.astype(np.float32)
    axis = np.divide(1.0, depth, out=np.zeros(depth.shape, np.float32), where=known) if units == "m" else \
        np.where(known, depth, 0).astype(np.float32)
    filled = push_pull(axis, known.astype(np.float32))
    if units == "m":
        filled = 1.0 / np.maximum(filled, np.float32(1e-6))
    return np.where(known, depth, filled).astype(np.float32)


def predict(stack: FrameSource | str | os.PathLike, *, method: str = "classic", aif: bool = False,
            align: str | bool = "auto", align_threshold_px: float | None = None, uncovered: str = "fill",
            progress: Progress | None = None, on_stage: Stage | None = None, **options) -> DepthResult:
    """Depth of one stack.

    Args:
        stack: a stack folder path, a ``StackFolder``, a ``FocalStack`` or any ``FrameSource``.
        method: a key of ``METHODS``.
        aif: also compute the all-in-focus image.
        align: ``"auto"`` (default), ``"on"`` or ``"off"``: see ``align_for_prediction``. Outputs keep the frame
            size; pixels that not every aligned frame covers get depth NaN and confidence 0.
        align_threshold_px: the ``"auto"`` threshold (full-resolution pixels of frame movement).
        uncovered: once aligned, the pixels that not every frame covers (a border ring, 2-15 % of the real stacks
            in ../shared/data): ``"fill"`` (default) gives them depth from the covered pixels around them
            (the classic method's own fill, guided by the all-in-focus image; ``fill_uncovered`` for a model),
            ``"invalid"`` gives them NaN (0 in a ``.png``). Their confidence is 0 either way. On the validation
            stacks given 1-4 % of focus breathing, filled border pixels score AbsRel 0.07 against 0.055 inside.
        progress: called with ``(done, total)``.
        on_stage: told the name of each stage as it starts.
        **options: method options (classic: ``measure``, ``window``, ``smooth``; model: ``weights``, ``device``,
            ``precision``, ``max_size``).

    Returns:
        The ``DepthResult``; its ``info`` holds ``align`` (the record of ``align_for_prediction``) and the
        method's resolved options.

    Raises:
        InputError: the stack cannot be read, or (``align="on"``) a frame cannot be registered.
        ValueError: unknown method or align mode.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    _align_mode(align)
    if uncovered not in UNCOVERED_MODES:
        raise ValueError(f"unknown uncovered mode {uncovered!r}; use one of {', '.join(UNCOVERED_MODES)}")
    if isinstance(stack, str | os.PathLike):
        stack = scan_stack(stack)
    stack, record = align_for_prediction(stack, align, threshold_px=align_threshold_px, progress=progress,
                                         on_stage=on_stage)
    if record["applied"] and method != "classic":  # the classic method streams the warped frames itself
        stack = stack.to_focal_stack()
    if on_stage is not None:
        on_stage("depth")
    result = METHODS[method](stack, aif=aif, progress=progress, **options)
    if record["applied"]:  # every method: no evidence of its own where a frame holds no data
        invalid = ~covered(stack)  # (H, W)
        record["uncovered_pixels"] = int(invalid.sum())
        record["uncovered"] = "filled" if uncovered == "fill" else "invalid"
        if invalid.any():
            if uncovered == "invalid":
                result.depth = np.where(invalid, np.float32(np.nan), result.depth).astype(np.float32)
            elif method != "classic":  # classic filled them itself (confidence 0 there: see ``fill_weak``)
                result.depth = fill_uncovered(result.depth, invalid, result.units)
            if result.confidence is not None:
                result.confidence = np.where(invalid, np.float32(0), result.confidence).astype(np.float32)
    result.info = {"align": record, **({"resolved": result.info} if result.info else {})}
    return result


def predict_to_files(stack: str | os.PathLike | StackFolder, outputs: PredictOutputs, *, method: str = "classic",
                     overwrite: bool = False, progress: Progress | None = None, stage: Path | None = None,
                     on_stage: Stage | None = None, **options) -> dict:
    """Predict one stack and write its outputs: checked first, written together (``atomic_paths``).

    Every output is written to a temporary file and the files are renamed into place together at the end, so an
    error or interrupt leaves none of them (and never some without the others). Missing output folders are
    created at that point.

    Args:
        stage: a folder for the temporary files (a batch's staging folder); default: beside each output.
        on_stage: told the name of each stage as it starts (``"checking alignment"``, ``"depth"``, ``"writing"``).
        **options: ``predict`` options (``align``, ``align_threshold_px``, the method's options).

    Returns:
        A summary dict (the sidecar's content plus ``outputs`` and ``seconds`` per stage) for printing or ``--json``.
    """
    from focalcli import __version__

    t0 = time.perf_counter()
    sf = as_stack_folder(stack)
    outputs.check(overwrite, folders_exist=stage is None)
    if outputs.ply is not None:
        _check_ply(sf)
    seconds: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def stage_timer(name: str) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            seconds[last[1]] = round(seconds.get(last[1], 0.0) + now - last[0], 4)
        last[:] = [now, name]
        if on_stage is not None:
            on_stage(name)

    stage_timer("reading")
    result = predict(sf, method=method, aif=outputs.aif is not None or outputs.ply is not None, progress=progress,
                     on_stage=stage_timer, **options)
    if outputs.confidence is not None and result.confidence is None:  # before anything is written
        raise ConfigError("this model gives no confidence map (the regression head has no choice among frames)")
    model = model_file_record(options.get("weights")) if method == "model" else None  # the file loaded fine
    meta = {
        "focal_version": __version__,
        "stack": str(sf.path),
        "frames": sf.names,
        "width": sf.info.width,
        "height": sf.info.height,
        "method": method,
        "options": _json_options(options),
        "resolved": result.info.get("resolved", {}),
        "units": result.units,
        "focus_distances_m": list(sf.focus_distances_m) if sf.focus_distances_m else None,
        "depth_png_scale": 1000.0,
        "note": UNIT_NOTES[result.units],
        "invalid": INVALID_NOTE if result.info["align"].get("uncovered") == "invalid" else "0 = no estimate",
        "align": result.info["align"],
    }
    if model is not None:
        meta["model"] = model
    if outputs.preview:
        from focalcli.io.depth import preview_range

        rng = outputs.depth_range or preview_range(result.depth, result.confidence)
        meta["preview"] = {"colormap": outputs.colormap, "range": [round(v, 6) for v in rng],
                           "range_source": "--range" if outputs.depth_range else "1st-99th percentile"}
    stage_timer("writing")
    items = outputs.items()
    with atomic_paths([p for _, p in items], stage=stage) as tmps:
        for (kind, _), tmp in zip(items, tmps, strict=True):
            base = kind.split("_")[0]
            if base == "depth":
                write_depth(tmp, result.depth)
            elif base == "preview":
                write_preview(tmp, result.depth, result.confidence, colormap=outputs.colormap,
                              depth_range=outputs.depth_range, units=result.units)
            elif kind == "aif":
                write_image(tmp, result.aif, bit_depth=16 if sf.info.bit_depth > 8 else 8)
            elif kind == "confidence":
                _write_confidence(tmp, result.confidence)
            elif kind == "ply":
                meta["ply_points"] = _write_ply(tmp, sf, result)
        text = json.dumps(meta, indent=2) + "\n"
        for (kind, _), tmp in zip(items, tmps, strict=True):
            if kind.split("_")[0] == "metadata":
                tmp.write_text(text, encoding="utf-8")
    stage_timer("done")
    seconds["total"] = round(time.perf_counter() - t0, 4)
    return {**meta, "outputs": {k: str(v) for k, v in items}, "seconds": seconds}


def range_notes(summary: dict) -> list[str]:
    """What to tell a user whose scene seems to extend beyond the stack's focus range: a note per end plane on which
    more than ``RANGE_NOTE_SHARE`` of the confident pixels sit (the sidecar's ``resolved.at_end_planes``, from
    ``focalcli.focus.depth.end_plane_shares``; the classic method only). Depth there is only a bound: the end
    plane's, or half an end interval inside it.

    Args:
        summary: what ``predict_to_files`` returned (or the sidecar's content).
    """
    shares = summary.get("resolved", {}).get("at_end_planes")
    if not shares:
        return []
    distances, n = summary.get("focus_distances_m"), len(summary["frames"])
    notes = []
    for end, word, side, index in (("near", "nearest", "nearer", 0), ("far", "farthest", "farther", n - 1)):
        if shares[end] > RANGE_NOTE_SHARE:
            plane = f"{distances[index]:g} m" if distances else f"frame {index + 1}"
            notes.append(f"{shares[end]:.0%} of the confident pixels are sharpest in the {word} frame ({plane}): the "
                         f"scene probably extends {side} than the focus range, and its depth there is only a bound "
                         f"(frames focused {side} would measure it)")
    return notes


def fuse_to_file(stack: StackFolder | str | os.PathLike, out: str | os.PathLike, *, measure: str = "laplacian",
                 window: int | None = None, align: str | bool = "auto", align_threshold_px: float | None = None,
                 overwrite: bool = False, progress: Progress | None = None, on_stage: Stage | None = None) -> dict:
    """Write the all-in-focus image of a stack (``focal fuse``), aligned first when ``align`` says so.

    Args:
        stack: a ``StackFolder`` (or its path).
        out: the image file (``.png``, ``.jpg``, ``.tif``); 16-bit stacks give 16-bit PNG/TIFF.
        align: ``"auto"``, ``"on"`` or ``"off"`` (see ``focalcli.predict.align_for_prediction``). Where an aligned
            frame does not cover a pixel, it takes no part in the fusion there.
        progress: called with ``(done, total)``; ``on_stage`` with each stage's name.

    Returns:
        A summary: stack, frames, the output path and the alignment record.

    Raises:
        InputError: unreadable stack, or a frame that cannot be registered (``align="on"``).
        OutputError: the output exists (without ``overwrite``) or cannot be written.
    """
    from focalcli.focus.classic import all_in_focus

    sf = as_stack_folder(stack)
    check_output(out, overwrite=overwrite, suffixes=AIF_SUFFIXES)
    source, record = align_for_prediction(sf, align, threshold_px=align_threshold_px, progress=progress,
                                          on_stage=on_stage)
    if on_stage is not None:
        on_stage("fusing")
    image = all_in_focus(source, measure=measure, window=window, progress=progress)
    write_image(out, image, bit_depth=16 if sf.info.bit_depth > 8 else 8)
    return {"stack": str(sf.path), "frames": len(sf), "aif": str(out), "align": record}
