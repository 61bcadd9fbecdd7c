"""Align a whole stack: register, refuse or drop bad frames, warp, and write the aligned folder or keep it in memory.

``align_folder`` is what ``focal align`` calls: frames are streamed from disk twice (once, downscaled, to register;
once to warp and write), so memory holds one full-size frame at a time. ``align_stack`` returns an aligned
in-memory ``FocalStack`` (``focal predict --align``).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from focalcli.align.register import AlignConfig, FrameReader, Registration, register_stack
from focalcli.align.warp import valid_box, warp_frame
from focalcli.errors import InputError
from focalcli.io.atomic import atomic_folder, atomic_path, check_output_folder
from focalcli.io.images import write_image
from focalcli.io.stack import FocalStack, StackFolder, scan_stack, write_stack_json

__all__ = ["TRANSFORMS_JSON", "align_folder", "align_stack", "check_registration"]

TRANSFORMS_JSON = "transforms.json"
FRAME_CACHE_BYTES = 256 * 2**20  # stacks up to this size (decoded) are decoded once and kept for the warping pass
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


def align_stack(stack: StackFolder | FocalStack, config: AlignConfig | None = None, *, crop: bool = False,
                skip_bad: bool = False, progress: Progress | None = None) -> FocalStack:
    """Register and warp a stack into an aligned in-memory ``FocalStack``.

    Args:
        stack: a ``StackFolder`` or a ``FocalStack``.
        config: registration options.
        crop: keep only the region every frame covers (else the reference frame's full size).
        skip_bad: drop frames that cannot be registered instead of raising.
        progress: called with ``(done, total)`` over registration and warping.

    Returns:
        The aligned stack (frames in the reference frame's geometry, colours matched to it).

    Raises:
        InputError: a frame cannot be registered (without ``skip_bad``), or the stack cannot be read.
    """
    import torch

    n = len(stack)

    def reg_progress(done: int, _: int) -> None:
        if progress is not None:
            progress(done, 2 * n)

    reader = FrameReader(stack, cache_bytes=FRAME_CACHE_BYTES)  # small stacks: decode each frame once
    reg = register_stack(stack, config, progress=reg_progress, reader=reader)
    keep = check_registration(reg, skip_bad=skip_bad, hint="drop them with `focal align --skip-bad`")
    x, y, w, h = _box(reg, keep, crop)
    frames = torch.empty(len(keep), 3, h, w)  # (N', 3, H', W')
    for j, i in enumerate(keep):
        image = reader.read(i)
        frames[j] = torch.from_numpy(warp_frame(image, reg.frames[i], (x, y, w, h))).permute(2, 0, 1)
        if progress is not None:
            progress(n + j + 1, n + len(keep))
    distances = _distances(stack)
    return FocalStack(
        frames=frames,
        focus_distances_m=torch.tensor([distances[i] for i in keep], dtype=torch.float32) if distances else None,
        camera=stack.camera,
        names=[stack.names[i] for i in keep],
        bit_depth=stack.bit_depth if isinstance(stack, FocalStack) else stack.info.bit_depth,
    )


def align_folder(stack: str | os.PathLike | StackFolder, out: str | os.PathLike, config: AlignConfig | None = None,
                 *, crop: bool = True, skip_bad: bool = False, overwrite: bool = False,
                 progress: Progress | None = None) -> dict:
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
        progress: called with ``(done, total)`` over registration and warping.

    Returns:
        A summary dict for printing or ``--json``.

    Raises:
        InputError: unreadable stack, or frames that cannot be registered (without ``skip_bad``).
        OutputError: ``out`` exists (without ``overwrite``), its parent is missing, or it is the input.
    """
    sf = stack if isinstance(stack, StackFolder) else scan_stack(stack)
    out = check_output_folder(out, overwrite=overwrite, inputs=[sf.path])
    n = len(sf)

    def reg_progress(done: int, _: int) -> None:
        if progress is not None:
            progress(done, 2 * n)

    reader = FrameReader(sf, cache_bytes=FRAME_CACHE_BYTES)  # small stacks: decode each frame once
    reg = register_stack(sf, config, progress=reg_progress, reader=reader)
    keep = check_registration(reg, skip_bad=skip_bad)
    box = _box(reg, keep, crop)
    names = [sf.relative_names[i] for i in keep]  # frames in sub-folders keep them: equal file names never collide
    with atomic_folder(out) as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque = deque()  # frames being encoded while the next one is warped (at most two held)
        for j, (i, name) in enumerate(zip(keep, names, strict=True)):
            image = warp_frame(reader.read(i), reg.frames[i], box)
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            pending.append(pool.submit(write_image, tmp / name, image, bit_depth=sf.info.bit_depth))
            if len(pending) > 2:
                pending.popleft().result()
            if progress is not None:
                progress(n + j + 1, n + len(keep))
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


def _distances(stack: StackFolder | FocalStack) -> list[float] | None:
    fd = stack.focus_distances_m
    if fd is None:
        return None
    return fd.tolist() if hasattr(fd, "tolist") else list(fd)  # a tensor (FocalStack) or a tuple (StackFolder)


def _dumps(transforms: dict) -> str:
    """JSON with one line per frame (readable, and diffable frame by frame)."""
    frames = ",\n".join("    " + json.dumps(f) for f in transforms["frames"])
    head = {k: v for k, v in transforms.items() if k != "frames"}
    body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in head.items())
    return f"{{\n{body},\n  \"frames\": [\n{frames}\n  ]\n}}\n"
