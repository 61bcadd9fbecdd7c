"""What a stack folder holds, what focal will assume about it, and which frames look out of place (``focal info``).

Besides the facts (frames, size, bit depth, focus distances, camera), the report says what the commands will
assume: without focus distances, the file order is taken as near to far and depth comes in frame-index units; a
2-frame stack can only tell two depth levels apart. It flags images that do not look like frames of the stack:

* a size other than most frames' (such images are left out of the report, and are an error for every other command);
* content: an image that is sharp wherever any other frame is sharpest, i.e. an all-in-focus result such as the
  ``expected.jpg`` that focus-stack ships beside its example frames. For each other frame ``k``, over the textured
  pixels where ``k`` is the sharpest of the rest, the median ratio of the image's focus energy to ``k``'s; a real
  frame falls far short in the bands it is not focused on, a fused image does not. An image is flagged when its
  worst band still reaches ``FUSED_RATIO`` and no other frame comes within a factor ``FUSED_MARGIN`` of it.

The content check looks at copies of at most ``CHECK_SIDE`` px (JPEGs decoded at reduced size).
"""

from __future__ import annotations

import os
import re

import cv2
import numpy as np

from focalcli.io.stack import StackFolder, scan_stack

__all__ = ["CHECK_SIDE", "fused_frames", "stack_info"]

CHECK_SIDE = 512  # px: long side of the copies the content check measures
FUSED_RATIO = 0.6  # worst-band sharpness ratio from which an image looks all in focus
FUSED_MARGIN = 3.0  # ... and by how much it must stand out from every other frame
COMMANDS_NEEDING = {"focal_length_mm": "predict --ply", "pixel_pitch_um": "predict --ply"}


def _energy(gray: np.ndarray) -> np.ndarray:
    lap = cv2.Laplacian(cv2.GaussianBlur(gray, (0, 0), 0.7), cv2.CV_32F)
    return cv2.GaussianBlur(lap * lap, (0, 0), max(gray.shape) / 64)


def fused_frames(stack: StackFolder, *, side: int = CHECK_SIDE) -> list[tuple[int, float]]:
    """Frames that look like an all-in-focus result rather than a frame (see the module docstring).

    Returns:
        ``(index, worst-band ratio)`` per flagged frame (usually none); nothing for stacks of fewer than 3 frames.
    """
    from focalcli.align.check import gray_thumbnail

    n = len(stack)
    if n < 3:
        return []
    energy = np.stack([_energy(gray_thumbnail(stack, i, side)) for i in range(n)])  # (N, h, w)
    order = np.argsort(-energy, axis=0)[:2]  # (2, h, w): the sharpest and the second sharpest frame
    best, second = np.take_along_axis(energy, order, 0)  # (h, w) each
    textured = best > np.quantile(best, 0.5)
    ratios = []
    for i in range(n):
        mine = order[0] == i
        other_best = np.where(mine, second, best)  # the sharpest of the rest
        other_arg = np.where(mine, order[1], order[0])
        bands = []
        for k in range(n):
            band = textured & (other_arg == k)
            if k != i and band.sum() > 0.05 * textured.sum():
                bands.append(float(np.median(energy[i][band] / (other_best[band] + 1e-12))))
        ratios.append(min(bands) if bands else 0.0)
    flagged = []
    for i, r in enumerate(ratios):
        rest = max((q for j, q in enumerate(ratios) if j != i), default=0.0)
        if r >= FUSED_RATIO and r >= FUSED_MARGIN * rest:
            flagged.append((i, r))
    return flagged


def _pattern(name: str) -> str:
    return re.sub(r"\d+", "#", os.path.splitext(name)[0]).lower()


def stack_info(folder: str | os.PathLike, *, content: bool = True) -> dict:
    """The ``focal info`` report of a stack folder.

    Args:
        folder: the stack folder.
        content: run the content check (decodes every frame at reduced size).

    Returns:
        A dict: ``path``, ``frames``, ``count``, ``width``, ``height``, ``bit_depth``, ``focus_distances_m``,
        ``focus_distance_source``, ``camera``, ``order`` (how the frames are ordered), ``notes`` (what focal will
        assume), ``suspects`` (``{"frame", "why"}`` per image that looks out of place), ``odd_size`` (``{"frame",
        "size"}`` per image of another size, left out of the rest of the report), ``missing`` (what the stack
        lacks that depth in metres or some command needs; ``needed_for`` names the command for camera fields) and
        ``optional`` (unknown camera fields that no command needs).

    Raises:
        InputError: the folder is not a readable stack.
    """
    sf = scan_stack(folder, same_size=False)
    names = sf.names
    notes, suspects, missing, optional = [], [], [], []
    if sf.focus_distances_m is None:
        order = "file names (natural sort), assumed near to far"
        notes.append("no focus distances: the frames are assumed to go from near to far in file-name order, and "
                     "depth comes in frame-index units (1 = nearest frame); reversed or shuffled files give "
                     "reversed or wrong depth: list them near to far in stack.json 'frames', or give "
                     "focus_distances_m")
    else:
        order = f"focus distance (from {sf.distance_source}), near to far"
    if len(sf) == 2:
        notes.append("2 frames: depth from focus can only tell two depth levels apart (nearer or farther than the "
                     "middle); depth between them is interpolated from the focus curves")
    odd_size = []
    for p in sf.odd_size:
        from focalcli.io.images import probe_image

        info = probe_image(p)
        odd_size.append({"frame": str(p), "size": f"{info.width}x{info.height}"})
        suspects.append({"frame": p.name, "why": f"size {info.width}x{info.height}, the frames are "
                         f"{sf.info.width}x{sf.info.height}: left out of this report; other commands refuse the "
                         "folder until a stack.json 'frames' list leaves it out"})
    if content:
        patterns = [_pattern(n) for n in names]
        for i, ratio in fused_frames(sf):
            odd_name = patterns.count(patterns[i]) == 1 and len(set(patterns)) == 2
            suspects.append({"frame": names[i], "why": f"sharp wherever any other frame is sharpest (worst-band "
                             f"ratio {ratio:.2f}): an all-in-focus result, not a frame of the stack?"
                             + (" Its name does not follow the others' either." if odd_name else "")
                             + " Leave it out with a stack.json 'frames' list"})
    needed_for = {}
    if sf.focus_distances_m is None:
        missing.append("focus distances (depth will be in frame-index units; add them to stack.json)")
    for key in ("focal_length_mm", "f_number", "pixel_pitch_um"):
        if getattr(sf.camera, key) is None:
            if key in COMMANDS_NEEDING:
                missing.append(f"camera.{key}")
                needed_for[f"camera.{key}"] = COMMANDS_NEEDING[key]
            else:
                optional.append(f"camera.{key}")
    return {
        "path": str(sf.path),
        "frames": names,
        "count": len(sf),
        "width": sf.info.width,
        "height": sf.info.height,
        "bit_depth": sf.info.bit_depth,
        "focus_distances_m": list(sf.focus_distances_m) if sf.focus_distances_m else None,
        "focus_distance_source": sf.distance_source,
        "camera": sf.camera.to_json(),
        "order": order,
        "notes": notes,
        "suspects": suspects,
        "odd_size": odd_size,
        "missing": missing,
        "needed_for": needed_for,
        "optional": optional,
    }
