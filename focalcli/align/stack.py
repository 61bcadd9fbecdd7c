"""Align a whole stack: register, refuse or drop bad frames, warp, and write the aligned folder or keep it in memory.

``align_folder`` is what ``focal align`` calls: frames are streamed from disk twice (once, downscaled, to register;
once to warp and write), so memory holds one full-size frame at a time. ``align_stack`` returns an aligned
in-memory ``FocalStack``; ``register_lazily`` returns a ``WarpedStack`` that warps each frame only when it is read
(``focal predict``/``fuse`` with alignment: no torch, and memory that does not grow with the stack).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from focalcli.align.register import AlignConfig, FrameReader, Registration, register_stack
from focalcli.align.warp import coverage_mask, valid_box, warp_frame, warp_map
from focalcli.errors import InputError
from focalcli.io.atomic import atomic_folder, atomic_path, check_output_folder
from focalcli.io.images import ImageInfo, write_image
from focalcli.io.stack import (
    Camera,
    FocalStack,
    FrameSource,
    StackFolder,
    as_stack_folder,
    covered,
    write_stack_json,
)

__all__ = ["TRANSFORMS_JSON", "WarpedStack", "align_folder", "align_stack", "check_registration", "register_and_warp",
           "register_lazily"]

TRANSFORMS_JSON = "transforms.json"
FRAME_CACHE_BYTES = 256 * 2**20  # decoded frames up to this size are kept from registration for the warping pass
Progress = Callable[[int, int], None]


def check_registration(registration: Registration, *, skip_bad: bool, hint: str = "use --skip-bad to drop them"
                       ) -> list[int]:
    """Indices of the frames to keep; raise when a frame failed and ``skip_bad`` is off.

    Raises:
        InputError: naming every frame that could not be registered and why.
    """
    bad = [f for f in registration.frames if not f.ok]
    if bad and not skip_bad:
        listed = "; ".join(f"{f.name} ({f.failure})" for f in bad)
        raise InputError(f"{len(bad)} frame(s) could not be registered: {listed}; {hint}")
    keep = [i for i, f in enumerate(registration.frames) if f.ok]
    if len(keep) < 2:
        raise InputError("fewer than two frames could be registered; nothing to align")
    return keep


def _box(registration: Registration, keep: list[int], crop: bool) -> tuple[int, int, int, int]:
    h, w = registration.size
    if not crop:
        return 0, 0, w, h
    box = valid_box([registration.frames[i] for i in keep], registration.size)
    if box[2] < 16 or box[3] < 16:
        raise InputError(f"the frames overlap in only {box[2]}x{box[3]} pixels after alignment; try --no-crop")
    return box


def align_stack(stack: FrameSource, config: AlignConfig | None = None, *, crop: bool = False,
                skip_bad: bool = False, progress: Progress | None = None) -> FocalStack:
    """Register and warp a stack into an aligned in-memory ``FocalStack``.

    Args:
        stack: a ``StackFolder``, a ``FocalStack`` or any ``FrameSource``.
        config: registration options.
        crop: keep only the region every frame covers (else the reference frame's full size).
        skip_bad: drop frames that cannot be registered instead of raising.
        progress: called with ``(done, total)`` over registration and warping.

    Returns:
        The aligned stack (frames in the reference frame's geometry, colours matched to it). Its ``coverage``
        marks the pixels each warped frame really covers (None when every frame covers every pixel); elsewhere the
        frame's border pixels are repeated.

    Raises:
        InputError: a frame cannot be registered (without ``skip_bad``), or the stack cannot be read.
    """
    return register_and_warp(stack, config, crop=crop, skip_bad=skip_bad, progress=progress)[0]


def register_and_warp(stack: FrameSource, config: AlignConfig | None = None, *, crop: bool = False,
                      skip_bad: bool = False, progress: Progress | None = None,
                      on_pass: Callable[[str], None] | None = None) -> tuple[FocalStack, Registration]:
    """``align_stack`` that also returns the ``Registration`` (the transforms and scores of every input frame).

    Args:
        progress: called with ``(done, total)`` in each pass.
        on_pass: called with ``"registering"`` and ``"warping"`` as each pass starts (progress bar labels).
    """
    if on_pass is not None:
        on_pass("registering")
    warped = register_lazily(stack, config, crop=crop, skip_bad=skip_bad, progress=progress)
    if on_pass is not None:
        on_pass("warping")
    return warped.to_focal_stack(progress), warped.registration


@dataclass
class WarpedStack:
    """A registered stack whose frames are warped into the reference frame's grid when they are read.

    It is a ``FrameSource`` (``io.stack``): depth, fusion and model inference read it as they read any stack, and
    ``cover(i)`` tells which pixels each warped frame holds. ``to_focal_stack()`` makes the in-memory ``FocalStack``
    (torch) for code that needs one.

    Attributes:
        source: the input stack.
        registration: its transforms (every input frame).
        keep: indices of the input frames used (all of them unless bad frames were dropped).
        box: ``(x, y, width, height)`` of the output in reference pixels.
    """

    source: FrameSource
    registration: Registration
    keep: list[int]
    box: tuple[int, int, int, int]
    reader: FrameReader = field(repr=False)

    def __len__(self) -> int:
        return len(self.keep)

    @property
    def names(self) -> list[str]:
        return [self.source.names[i] for i in self.keep]

    @property
    def focus_distances_m(self) -> tuple[float, ...] | None:
        distances = self.distances()
        return tuple(distances) if distances else None

    def distances(self) -> list[float] | None:
        distances = self.source.distances()
        return [distances[i] for i in self.keep] if distances else None

    @property
    def camera(self) -> Camera:
        return self.source.camera

    @property
    def bit_depth(self) -> int:
        return self.source.bit_depth

    streamed = True  # frames are warped when read

    @property
    def info(self) -> ImageInfo:
        return ImageInfo(width=self.box[2], height=self.box[3], channels=3, bit_depth=self.bit_depth)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.box[3], self.box[2]

    def frame(self, j: int, native: bool = False) -> np.ndarray:
        """The ``j``-th kept frame, warped: HxWx3 float32 RGB in [0, 1] (warped frames are float; ``native`` changes
        nothing)."""
        i = self.keep[j]
        return warp_frame(self.reader.read(i), self.registration.frames[i], self.box)

    def unwarped(self, j: int) -> np.ndarray:
        """The ``j``-th kept frame as read, before warping: HxWx3 float32 RGB in [0, 1], the input's size.

        With ``warp`` and ``warp_map`` this lets a consumer measure on the frame as the camera recorded it and
        resample only the result: the classic method's focus measure, which resampling the frame would weaken
        (an interpolation smooths fine detail in every frame but the reference, which is not resampled).
        """
        return self.reader.read(self.keep[j])

    def warp(self, j: int, image: np.ndarray) -> np.ndarray:
        """``unwarped(j)`` warped as ``frame(j)`` warps it (geometry and colour correction)."""
        return warp_frame(image, self.registration.frames[self.keep[j]], self.box)

    def warp_map(self, j: int, values: np.ndarray, interpolation: int = 1) -> np.ndarray:
        """A per-pixel map of ``unwarped(j)`` (float32 HxW) in the output grid, 0 where the frame does not reach
        (``align.warp.warp_map``; ``interpolation`` an OpenCV flag, 1 = bilinear)."""
        return warp_map(values, self.registration.frames[self.keep[j]], self.box, interpolation)

    def gain(self, j: int) -> float:
        """The mean of the ``j``-th kept frame's per-channel exposure gain (``warp`` multiplies by it)."""
        return float(np.mean(self.registration.frames[self.keep[j]].gain))

    def magnification(self, j: int) -> float:
        """How much larger the ``j``-th kept frame shows the scene than the reference (1.02: 2 %)."""
        return float(self.registration.frames[self.keep[j]].scale)

    def cover(self, j: int) -> np.ndarray | None:
        """Which pixels the ``j``-th kept frame covers (``coverage_mask``): HxW bool, None when it covers all."""
        mask = coverage_mask(self.registration.frames[self.keep[j]], self.registration.size, self.box)
        return None if mask.all() else mask

    def frame_path(self, j: int) -> None:
        return None  # a warped frame is no file

    def covered(self) -> np.ndarray:
        """The pixels every kept frame covers: HxW bool."""
        return covered(self)

    def iter_frames(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, warped frame)`` near to far, one at a time."""
        for j, name in enumerate(self.names):
            yield name, self.frame(j)

    def to_focal_stack(self, progress: Progress | None = None) -> FocalStack:
        """All warped frames in memory, with their ``coverage`` (None when every frame covers every pixel)."""
        import torch

        h, w = self.size
        frames = torch.empty(len(self), 3, h, w)  # (N', 3, H', W')
        coverage = torch.ones(len(self), h, w, dtype=torch.bool)  # (N', H', W')
        for j in range(len(self)):
            frames[j] = torch.from_numpy(self.frame(j)).permute(2, 0, 1)
            cover = self.cover(j)
            if cover is not None:
                coverage[j] = torch.from_numpy(cover)
            if progress is not None:
                progress(j + 1, len(self))
        fd = self.focus_distances_m
        return FocalStack(frames=frames, focus_distances_m=torch.tensor(fd, dtype=torch.float32) if fd else None,
                          camera=self.camera, names=self.names, bit_depth=self.bit_depth,
                          coverage=None if bool(coverage.all()) else coverage)


def register_lazily(stack: FrameSource, config: AlignConfig | None = None, *, crop: bool = False,
                    skip_bad: bool = False, progress: Progress | None = None,
                    hint: str = "drop them with `focal align --skip-bad`") -> WarpedStack:
    """Register a stack and return it as a ``WarpedStack`` (frames warped when read): the first pass of
    ``align_stack`` and ``align_folder``.

    Up to ``FRAME_CACHE_BYTES`` of decoded frames are kept from registration (``io.stack.keep_frames``), so the
    frames of a small stack are decoded once; the frames beyond that are decoded again when read.

    Args:
        hint: how to get past frames that cannot be registered (the end of the error).

    Raises:
        InputError: a frame cannot be registered (without ``skip_bad``), or the stack cannot be read.
    """
    reader = FrameReader(stack, cache_bytes=FRAME_CACHE_BYTES)
    reg = register_stack(stack, config, progress=progress, reader=reader)
    keep = check_registration(reg, skip_bad=skip_bad, hint=hint)
    return WarpedStack(source=stack, registration=reg, keep=keep, box=_box(reg, keep, crop), reader=reader)


def align_folder(stack: str | os.PathLike | StackFolder, out: str | os.PathLike, config: AlignConfig | None = None,
                 *, crop: bool = True, skip_bad: bool = False, overwrite: bool = False,
                 progress: Progress | None = None, on_pass: Callable[[str], None] | None = None) -> dict:
    """Align a stack folder into ``out``: the warped frames, ``stack.json`` and ``transforms.json``.

    The output folder is checked before any work and written as a whole (a temporary folder renamed into place),
    so a failure leaves nothing behind. Frames keep their names (and sub-folders), format and bit depth.

    ``transforms.json`` lists the written frames in input order; ``reference`` is the reference's index among the
    INPUT frames, matrices map input-frame pixels to reference-frame pixels before the crop, ``crop`` is
    ``[x, y, width, height]`` of the output in reference pixels, and ``skipped`` names the dropped frames.

    Args:
        stack: the input stack folder (or its ``StackFolder``).
        out: the output folder.
        config: registration options.
        crop: crop every frame to the region all frames cover.
        skip_bad: drop frames that cannot be registered instead of failing.
        overwrite: replace an existing ``out``.
        progress: called with ``(done, total)`` in each pass (registering, then warping and writing).
        on_pass: called with ``"registering"`` and ``"warping"`` as each pass starts (progress bar labels).

    Returns:
        A summary dict for printing or ``--json``.

    Raises:
        InputError: unreadable stack, or frames that cannot be registered (without ``skip_bad``).
        OutputError: ``out`` exists (without ``overwrite``), its parent is missing, or it is the input.
    """
    sf = as_stack_folder(stack)
    out = check_output_folder(out, overwrite=overwrite, inputs=[sf.path])
    if on_pass is not None:
        on_pass("registering")
    warped = register_lazily(sf, config, crop=crop, skip_bad=skip_bad, progress=progress,
                             hint="use --skip-bad to drop them")
    reg, keep, box = warped.registration, warped.keep, warped.box
    names = [sf.relative_names[i] for i in keep]  # frames in sub-folders keep them: equal file names never collide
    if on_pass is not None:
        on_pass("warping")
    workers = max(2, min(4, os.cpu_count() or 1))
    with atomic_folder(out) as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()  # frames being warped and encoded in the background (as many as workers)
        for j, name in enumerate(names):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            pending.append(pool.submit(lambda j, path: write_image(path, warped.frame(j), bit_depth=sf.info.bit_depth),
                                       j, tmp / name))
            if len(pending) >= workers:
                pending.popleft().result()
            if progress is not None:
                progress(j + 1, len(keep))
        while pending:
            pending.popleft().result()
        distances = [sf.focus_distances_m[i] for i in keep] if sf.focus_distances_m else None
        aligned = {"source": str(sf.path), "reference": sf.names[reg.reference], "model": reg.model,
                   "crop": list(box)}
        write_stack_json(tmp, names, distances, sf.camera, extra={"aligned": aligned})
        transforms = reg.to_json()
        transforms["frames"] = [transforms["frames"][i] for i in keep]
        transforms["skipped"] = reg.bad
        transforms["crop"] = list(box)
        with atomic_path(tmp / TRANSFORMS_JSON) as t:
            t.write_text(_dumps(transforms), encoding="utf-8")
    scales = [reg.frames[i].scale for i in keep]
    return {
        "stack": str(sf.path),
        "out": str(out),
        "frames": len(keep),
        "skipped": reg.bad,
        "reference": sf.names[reg.reference],
        "model": reg.model,
        "crop": list(box),
        "scale_range": [round(min(scales), 5), round(max(scales), 5)],
        "min_score": round(min(reg.frames[i].score for i in keep), 4),
    }


def _dumps(transforms: dict) -> str:
    """JSON with one line per frame (readable, and diffable frame by frame)."""
    frames = ",\n".join("    " + json.dumps(f) for f in transforms["frames"])
    head = {k: v for k, v in transforms.items() if k != "frames"}
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items())
    return f"{{\n{body},\n  \"frames\": [\n{frames}\n  ]\n}}\n"
