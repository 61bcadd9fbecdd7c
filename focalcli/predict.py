"""Depth (and all-in-focus, confidence, point cloud) for a stack folder or a tree of stack folders, written to files.

``predict(stack, method=...)`` returns a ``DepthResult`` in memory; ``predict_to_files`` adds the output
contract: every output path is checked before any work starts, and the files of one stack appear together.

Before a method runs, ``align`` decides whether the frames are registered first (``"auto"``: a quick check of the
frame-to-frame scale and shift, ``focalcli.align.check``; ``"on"``; ``"off"``). Pixels that not every aligned frame
covers have no depth (NaN in memory, 0 in the files).

Outputs beside each depth file ``D.ext``: ``D.json`` (the sidecar: units, method and every resolved option, model
file and SHA-256, alignment, focal version: what made the numbers and how to read them) and, on request,
``D_preview.png`` (a colour map with a labelled colour bar), the all-in-focus image, the confidence map and a PLY
point cloud. Several depth files (``d.png`` and ``d.npy``) share one sidecar.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from focalcli.errors import ConfigError, InputError, OutputError
from focalcli.io.atomic import (
    atomic_paths,
    check_output,
    check_output_tree,
    check_writable,
    partial_folder,
    remove_partial_folders,
)
from focalcli.io.depth import COLORMAPS, DEPTH_SUFFIXES, DepthResult, write_depth, write_preview
from focalcli.io.images import write_image
from focalcli.io.stack import (
    FrameSource,
    StackFolder,
    as_stack_folder,
    covered,
    find_stack_tree,
    is_stack_folder,
    scan_stack,
)

__all__ = ["ALIGN_MODES", "METHODS", "BatchPlan", "BatchPlans", "PredictOutputs", "align_for_prediction",
           "fuse_to_file", "is_batch_input", "model_file_record", "plan_batch", "predict", "predict_batch",
           "predict_to_files"]

AIF_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
CONFIDENCE_SUFFIXES = (".npy", ".png", ".tif", ".tiff")
PLY_SUFFIXES = (".ply",)
ALIGN_MODES = ("auto", "on", "off")
Progress = Callable[[int, int], None]
Stage = Callable[[str], None]  # told the name of each stage as it starts ("checking alignment", "depth", ...)
UNIT_NOTES = {
    "m": "depth in metres",
    "frame_index": "focus distances unknown: depth is in frame-index units, 1 = nearest frame, N = farthest",
    "relative": "focus distances unknown: depth is relative (right in order and shape, not in scale)",
}
INVALID_NOTE = "0 (NaN in memory) = no estimate: pixels that not every frame covers after alignment"


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
        threshold_px: the auto threshold in full-resolution pixels (None: ``focalcli.align.check.THRESHOLD_PX``).
        progress: called with ``(done, total)`` per registration/warping pass.
        on_stage: told ``"checking alignment"``, ``"registering"`` and ``"warping"`` as they start.

    Returns:
        ``(stack, record)``: the input itself when not aligned (so the result is bit for bit what ``"off"``
        gives), else a ``focalcli.align.WarpedStack`` (frames warped as they are read; ``cover(i)`` marks the
        pixels frame ``i`` covers, ``to_focal_stack()`` gives a ``FocalStack`` with ``coverage``). ``record`` has
        ``mode``, ``applied``, ``reason``, the quick check (``check``: misalignment, threshold, per-frame
        transforms and scores) and, when applied, ``registration`` (model, reference, every frame's matrix, scale,
        score and colour correction).

    Raises:
        InputError: ``"on"`` and a frame cannot be registered (``"auto"`` then predicts without alignment and says
            why in the record).
    """
    from focalcli.align.check import THRESHOLD_PX

    mode = _align_mode(align)
    record: dict = {"mode": mode, "applied": False}
    if mode == "off":
        record["reason"] = "not aligned: --align off"
        return stack, record
    if mode == "auto":
        from focalcli.align.check import check_alignment

        if on_stage is not None:
            on_stage("checking alignment")
        check = check_alignment(stack, threshold_px=THRESHOLD_PX if threshold_px is None else threshold_px)
        record["check"] = check.to_json()
        record["reason"] = check.reason
        if not check.needed:
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
        return stack, record
    record.update(applied=True, registration=aligned.registration.to_json())
    if mode == "on":
        record["reason"] = "aligned: --align on"
    return aligned, record


def predict(stack: FrameSource | str | os.PathLike, *, method: str = "classic", aif: bool = False,
            align: str | bool = "auto", align_threshold_px: float | None = None, progress: Progress | None = None,
            on_stage: Stage | None = None, **options) -> DepthResult:
    """Depth of one stack.

    Args:
        stack: a stack folder path, a ``StackFolder``, a ``FocalStack`` or any ``FrameSource``.
        method: a key of ``METHODS``.
        aif: also compute the all-in-focus image.
        align: ``"auto"`` (default), ``"on"`` or ``"off"``: see ``align_for_prediction``. Outputs keep the frame
            size; pixels that not every aligned frame covers get depth NaN and confidence 0.
        align_threshold_px: the ``"auto"`` threshold (full-resolution pixels of frame movement).
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
    if isinstance(stack, str | os.PathLike):
        stack = scan_stack(stack)
    stack, record = align_for_prediction(stack, align, threshold_px=align_threshold_px, progress=progress,
                                         on_stage=on_stage)
    if record["applied"] and method != "classic":  # the classic method streams the warped frames itself
        stack = stack.to_focal_stack()
    if on_stage is not None:
        on_stage("depth")
    result = METHODS[method](stack, aif=aif, progress=progress, **options)
    if record["applied"]:  # every method: no depth where a frame holds no data
        invalid = ~covered(stack)  # (H, W)
        record["uncovered_pixels"] = int(invalid.sum())
        if invalid.any():
            result.depth = np.where(invalid, np.float32(np.nan), result.depth).astype(np.float32)
            if result.confidence is not None:
                result.confidence = np.where(invalid, np.float32(0), result.confidence).astype(np.float32)
    result.info = {"align": record, **({"resolved": result.info} if result.info else {})}
    return result


@dataclass(frozen=True)
class PredictOutputs:
    """Where the outputs of one stack go.

    Attributes:
        depth: the depth file (``.png``, ``.npy``, ``.tif``/``.tiff``).
        aif, confidence, ply: optional outputs.
        preview: also write ``D_preview.png`` beside each depth file ``D.ext``.
        more_depths: further depth files of the same result (e.g. ``d.npy`` beside ``d.png``); depth files with
            the same name share one sidecar and one preview.
        colormap, depth_range: the preview's colour map and fixed ``(near, far)`` range (None: percentiles).
    """

    depth: Path
    aif: Path | None = None
    confidence: Path | None = None
    preview: bool = False
    more_depths: tuple[Path, ...] = ()
    ply: Path | None = None
    colormap: str = "turbo"
    depth_range: tuple[float, float] | None = None

    @property
    def depths(self) -> list[Path]:
        return [self.depth, *self.more_depths]

    @property
    def sidecar(self) -> Path:
        return self.depth.with_suffix(".json")

    @property
    def sidecars(self) -> list[Path]:
        """One ``.json`` per distinct depth file name (``d.png`` and ``d.npy`` share ``d.json``)."""
        return list(dict.fromkeys(d.with_suffix(".json") for d in self.depths))

    @property
    def preview_path(self) -> Path:
        return self.depth.with_name(self.depth.stem + "_preview.png")

    @property
    def preview_paths(self) -> list[Path]:
        return list(dict.fromkeys(d.with_name(d.stem + "_preview.png") for d in self.depths))

    def items(self) -> list[tuple[str, Path]]:
        """Every requested output as ``(kind, path)``: ``depth``, ``metadata``, ``preview`` (then ``depth_2``,
        ``metadata_2``, ... for further depth files), ``aif``, ``confidence``, ``ply``."""
        out: list[tuple[str, Path]] = []
        for kind, paths in (("depth", self.depths), ("metadata", self.sidecars),
                            ("preview", self.preview_paths if self.preview else [])):
            out += [(kind if i == 0 else f"{kind}_{i + 1}", p) for i, p in enumerate(paths)]
        out += [(k, p) for k, p in (("aif", self.aif), ("confidence", self.confidence), ("ply", self.ply))
                if p is not None]
        return out

    def paths(self) -> dict[str, Path]:
        """Every requested output by kind (see ``items``)."""
        return dict(self.items())

    def check(self, overwrite: bool, *, folders_exist: bool = True) -> None:
        """Check every path before work starts (see ``check_output``); missing folders are created when written.

        Args:
            overwrite: whether existing outputs may be replaced.
            folders_exist: check the output folders' writability too (a batch checks its output tree itself).

        Raises:
            OutputError: a path is unusable.
            ConfigError: an unknown colour map or a bad range.
        """
        if self.colormap not in COLORMAPS:
            raise ConfigError(f"unknown colour map {self.colormap!r}; use one of {', '.join(COLORMAPS)}")
        if self.depth_range is not None and not (0 <= self.depth_range[0] < self.depth_range[1]):
            raise ConfigError(f"the preview range must be NEAR,FAR with 0 <= NEAR < FAR, got "
                              f"{','.join(f'{v:g}' for v in self.depth_range)}")
        allowed = {"depth": DEPTH_SUFFIXES, "aif": AIF_SUFFIXES, "confidence": CONFIDENCE_SUFFIXES,
                   "ply": PLY_SUFFIXES}
        for kind, p in self.items():
            suffixes = allowed.get(kind.split("_")[0])
            if folders_exist:
                check_output(p, overwrite=overwrite, suffixes=suffixes)
                continue
            if suffixes is not None and p.suffix.lower() not in suffixes:
                raise OutputError(f"{p}: unknown output extension {p.suffix or '(none)'!r}; use one of "
                                  f"{', '.join(suffixes)}")
            if p.is_dir():
                raise OutputError(f"{p}: is a folder, expected a file name")
        paths = [p.resolve() for _, p in self.items()]
        if len(set(paths)) != len(paths):
            raise OutputError("two outputs share one file name; give each output its own path")


def _write_confidence(path: Path, confidence: np.ndarray) -> None:
    """png: 16-bit, 65535 = 1; npy/tiff: float32 in [0, 1]."""
    if path.suffix.lower() == ".png":
        write_image(path, confidence, bit_depth=16)
    else:
        write_depth(path, confidence)


def _json_options(options: dict) -> dict:
    """The options as given, JSON-ready (the sidecar's ``options``; ``align`` defaults to ``auto``)."""
    options = {"align": "auto", **options}
    return {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in options.items() if v is not None}


@functools.lru_cache(maxsize=8)
def _sha256(path: str, stamp: tuple) -> str:
    del stamp  # part of the cache key: a file replaced in place is hashed again
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_file_record(weights: str | os.PathLike | None) -> dict:
    """``{"file", "sha256", "bytes", "shipped"}`` of a model file (None: the weights shipped with focal).

    Raises:
        ModelFileError: no weights ship with this install (``weights`` None) or the file cannot be read.
    """
    from focalcli.errors import ModelFileError
    from focalcli.learned import default_weights

    path = Path(weights) if weights is not None else default_weights()
    try:
        st = path.stat()
        digest = _sha256(str(path.resolve()), (st.st_size, st.st_mtime_ns))
    except OSError as e:
        raise ModelFileError(f"{path}: cannot read the model file ({e.strerror or e})") from e
    return {"file": path.name, "sha256": digest, "bytes": st.st_size, "shipped": weights is None}


def _check_ply(sf: StackFolder) -> None:
    """A point cloud needs metric depth and the camera's focal length and pixel pitch (checked before any work).

    Raises:
        InputError: naming what the stack lacks.
    """
    missing = []
    if sf.focus_distances_m is None:
        missing.append("focus distances (depth would not be in metres)")
    if sf.camera.focal_length_mm is None:
        missing.append("camera.focal_length_mm")
    if sf.camera.pixel_pitch_um is None:
        missing.append("camera.pixel_pitch_um")
    if missing:
        raise InputError(f"{sf.path}: --ply needs metric depth and the camera intrinsics; the stack lacks "
                         f"{', '.join(missing)} (add them to stack.json)")


def _write_ply(path: Path, sf: StackFolder, result: DepthResult) -> int:
    """Back-project ``result`` through the stack's camera (see ``focalcli.io.pointcloud``); returns the point count."""
    from focalcli import __version__
    from focalcli.io.pointcloud import depth_to_points, image_distance_m, write_ply

    if result.units != "m":
        raise InputError(f"{sf.path}: --ply needs metric depth; this method gave {result.units} units")
    distances = sf.focus_distances_m
    f_m = sf.camera.focal_length_mm / 1000.0
    v = image_distance_m(f_m, distances[(len(distances) - 1) // 2])  # the reference (middle) frame's focus
    pixels_per_m = v / (sf.camera.pixel_pitch_um * 1e-6)
    points, rgb = depth_to_points(result.depth, result.aif, pixels_per_m=pixels_per_m)
    write_ply(path, points, rgb, comments=(f"focal {__version__}", f"stack {sf.path.name}",
                                           "OpenCV camera frame: x right, y down, z forward, metres",
                                           f"pinhole focal length {pixels_per_m * v:.3f} px (image distance "
                                           f"{v * 1000:.4f} mm)"))
    return len(points)


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
        "invalid": INVALID_NOTE if result.info["align"]["applied"] else "0 = no estimate",
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
