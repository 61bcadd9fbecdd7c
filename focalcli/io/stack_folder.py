"""Reading and writing one stack folder: ``scan_stack`` (frame order, ``stack.json`` or EXIF, size checks; headers
only), ``read_stack`` (all pixels), ``write_stack`` and ``write_stack_json``. The layout is described in
``focalcli.io.stack``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from focalcli.errors import InputError
from focalcli.io.atomic import atomic_path
from focalcli.io.focalstack import STACK_JSON, Camera, FocalStack, StackFolder, natural_key
from focalcli.io.images import (
    IMAGE_SUFFIXES,
    MIN_FRAME_SIDE,
    has_exif,
    open_pil,
    probe_image,
    write_image,
)

_SIDECARS = {".json", ".txt", ".md", ".xmp", ".pp3", ".ini", ".db", ".csv", ".yaml", ".yml", ".toml", ""}
_RAW = {".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf", ".pef", ".srw"}


def as_stack_folder(stack: str | os.PathLike | StackFolder) -> StackFolder:
    """``stack`` itself when it is a ``StackFolder``, else the scanned folder it names (``scan_stack``)."""
    return stack if isinstance(stack, StackFolder) else scan_stack(stack)


def _positive(value: object, what: str, where: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: {what} must be a positive number, got {value!r}")
    return float(value)


def _read_stack_json(folder: Path) -> dict | None:
    p = folder / STACK_JSON
    if not p.is_file():
        return None
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise InputError(f"{p}: expected a JSON object at the top level")
    return meta


def _frame_path(folder: Path, name: str, where: Path) -> Path:
    """``folder / name`` for a frame listed in stack.json; names that lead out of the stack folder are refused."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
        raise InputError(f"{where}: frame {name!r} must be a file name inside the stack folder (no absolute paths, "
                         f"'..' or backslashes)")
    return folder / name  # (a symbolic link inside the folder may lead elsewhere: that is the user's own choice)


def _camera_from_json(raw: object, where: Path) -> Camera:
    if raw is None:
        return Camera()
    if not isinstance(raw, dict):
        raise InputError(f"{where}: 'camera' must be an object")
    known = {"focal_length_mm", "f_number", "pixel_pitch_um"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InputError(f"{where}: unknown camera key(s) {unknown}; known: {sorted(known)}")
    return Camera(**{k: _positive(v, f"camera.{k}", where) for k, v in raw.items() if v is not None})


def _folder_images(folder: Path) -> list[Path]:
    images = []
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        if p.name.startswith(".") or p.is_dir() or p.name == STACK_JSON:
            continue
        suffix = p.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            images.append(p)
        elif suffix in _RAW:
            raise InputError(f"{p}: camera RAW files are not read; convert the stack to 16-bit TIFF or PNG first")
        elif suffix not in _SIDECARS:
            raise InputError(f"{p}: not an image (frames must be png, jpg or tif); move it out of the stack folder")
    return images


def _exif_optics(path: Path) -> tuple[float | None, Camera]:
    """Focus distance (EXIF SubjectDistance, metres) and camera optics from one image's EXIF."""
    if not has_exif(path):
        return None, Camera()
    try:
        with open_pil(path) as im:
            width = im.size[0]
            exif = im.getexif().get_ifd(0x8769)
    except (OSError, ValueError, SyntaxError, InputError):
        return None, Camera()  # probe_image says what is wrong with the file

    def num(tag: int) -> float | None:
        v = exif.get(tag)
        try:
            v = float(v)
        except (TypeError, ValueError, ZeroDivisionError):
            return None
        return v if math.isfinite(v) and v > 0 else None

    distance = num(0x9206)  # SubjectDistance
    if distance is not None and distance >= 4e9:  # 0xFFFFFFFF means infinity
        distance = None
    pitch = None
    res, unit, exif_w = num(0xA20E), exif.get(0xA210), num(0xA002)  # FocalPlaneXResolution, unit, PixelXDimension
    if res and unit in (2, 3):
        pitch = (25400.0 if unit == 2 else 10000.0) / res * ((exif_w or width) / width)
    return distance, Camera(focal_length_mm=num(0x920A), f_number=num(0x829D), pixel_pitch_um=pitch)


def scan_stack(folder: str | os.PathLike, *, same_size: bool = True) -> StackFolder:
    """Scan a stack folder: list and order its frames, read ``stack.json`` or EXIF, check sizes.

    Only image headers are read; pixels are decoded later (``iter_frames`` / ``read_stack``).

    Args:
        folder: the stack folder.
        same_size: images whose size differs from most frames' are an error (naming them); False leaves them out
            and lists them in ``odd_size`` (``focal info`` reports them).

    Raises:
        InputError: missing or empty folder, fewer than two frames, invalid ``stack.json``, a non-image file,
            an unreadable image, or frames of different sizes.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (a stack is a folder of images)")
    meta = _read_stack_json(folder)
    where = folder / STACK_JSON
    camera, distances, source = Camera(), None, None
    if meta is not None and "frames" in meta:
        names = meta["frames"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InputError(f"{where}: 'frames' must be a list of file names")
        paths = [_frame_path(folder, n, where) for n in names]
        if len(set(paths)) != len(paths):
            twice = sorted({n for n, p in zip(names, paths, strict=True) if paths.count(p) > 1})
            raise InputError(f"{where}: frame(s) listed twice: {', '.join(twice[:5])}")
        missing = [n for n, p in zip(names, paths, strict=True) if not p.is_file()]
        if missing:
            raise InputError(f"{where}: frame file(s) not found: {', '.join(missing[:5])}")
    else:
        paths = _folder_images(folder)
    if not paths:
        raise InputError(f"{folder}: no images found (expected png, jpg or tif frames)")
    if len(paths) < 2:
        raise InputError(f"{folder}: only one frame; depth from focus needs at least two frames")
    if meta is not None:
        camera = _camera_from_json(meta.get("camera"), where)
        raw = meta.get("focus_distances_m")
        if raw is not None:
            if not isinstance(raw, list):
                raise InputError(f"{where}: 'focus_distances_m' must be a list of numbers")
            if len(raw) != len(paths):
                raise InputError(f"{where}: {len(raw)} focus distances for {len(paths)} frames")
            distances, source = [_positive(v, "each focus distance", where) for v in raw], STACK_JSON
    if distances is None or camera == Camera():
        exif = [_exif_optics(p) for p in paths]
        if distances is None and all(d is not None for d, _ in exif):
            distances, source = [float(d) for d, _ in exif], "exif"
        if camera == Camera():
            camera = exif[0][1]
    if distances is not None:
        if len(set(distances)) != len(distances):
            raise InputError(f"{folder}: two frames share a focus distance ({source}); each frame needs its own")
        order = sorted(range(len(paths)), key=lambda i: distances[i])
        paths, distances = [paths[i] for i in order], [distances[i] for i in order]
    infos = [probe_image(p) for p in paths]
    sizes = [(i.width, i.height) for i in infos]
    common = max(sizes, key=lambda sz: (sizes.count(sz), -sizes.index(sz)))  # the most frequent, then the first
    odd = [k for k, sz in enumerate(sizes) if sz != common]
    if odd and (same_size or len(paths) - len(odd) < 2):
        k = odd[0]
        others = len(paths) - len(odd)
        what = f"the other {others} frames'" if others > 1 else f"{paths[sizes.index(common)].name}'s"
        raise InputError(f"{paths[k]}: frame size {sizes[k][0]}x{sizes[k][1]} differs from {what} "
                         f"{common[0]}x{common[1]} (not part of the stack? leave it out with a stack.json 'frames' "
                         "list, or align or resize the frames first)")
    odd_paths = tuple(paths[k] for k in odd)
    if odd:
        keep = [k for k in range(len(paths)) if k not in odd]
        paths, infos = [paths[k] for k in keep], [infos[k] for k in keep]
        distances = [distances[k] for k in keep] if distances is not None else None
    first = infos[0]
    if min(first.width, first.height) < MIN_FRAME_SIDE:
        raise InputError(f"{paths[0]}: frames are {first.width}x{first.height} pixels; focal needs at least "
                         f"{MIN_FRAME_SIDE} pixels on each side")
    bits = max(i.bit_depth for i in infos)
    return StackFolder(
        path=folder,
        frame_paths=tuple(paths),
        focus_distances_m=tuple(distances) if distances is not None else None,
        distance_source=source,
        camera=camera,
        info=replace(first, bit_depth=bits),
        odd_size=odd_paths,
    )


def read_stack(folder: str | os.PathLike) -> FocalStack:
    """Read a whole stack folder into memory as a ``FocalStack`` (frames near to far).

    Raises:
        InputError: as ``scan_stack``, plus unreadable pixels.
    """
    import torch

    sf = scan_stack(folder)
    frames = torch.stack([torch.from_numpy(img).permute(2, 0, 1) for _, img in sf.iter_frames()])  # (N, 3, H, W)
    fd = torch.tensor(sf.focus_distances_m, dtype=torch.float32) if sf.focus_distances_m else None
    return FocalStack(frames=frames, focus_distances_m=fd, camera=sf.camera, names=sf.names,
                      bit_depth=sf.info.bit_depth)


def write_stack(
    stack: FocalStack, folder: str | os.PathLike, *, extension: str = ".png", extra: dict | None = None
) -> Path:
    """Write a stack as a folder of images plus ``stack.json`` (frames keep their names, re-suffixed).

    Args:
        stack: the stack.
        folder: destination folder; created if missing (its parent must exist).
        extension: image format of the frames.
        extra: additional top-level keys for ``stack.json`` (e.g. how it was made).

    Returns:
        The folder.
    """
    folder = Path(folder)
    folder.mkdir(exist_ok=True)
    names = [Path(n).stem + extension for n in stack.names]
    for name, frame in zip(names, stack.frames, strict=True):
        write_image(folder / name, frame.permute(1, 2, 0).float().cpu().numpy(), bit_depth=stack.bit_depth)
    distances = stack.focus_distances_m.tolist() if stack.focus_distances_m is not None else None
    write_stack_json(folder, names, distances, stack.camera, extra=extra)
    return folder


def write_stack_json(folder: str | os.PathLike, names: Sequence[str], focus_distances_m: Sequence[float] | None,
                     camera: Camera, *, extra: dict | None = None) -> Path:
    """Write a stack folder's ``stack.json`` (atomically) for frames already in ``folder``.

    Args:
        folder: the stack folder.
        names: frame file names, near to far.
        focus_distances_m: one per frame, or None when unknown.
        camera: optics; unknown fields are left out.
        extra: additional top-level keys (e.g. how the stack was made).

    Returns:
        The path of ``stack.json``.
    """
    meta: dict = {"frames": list(names)}
    if focus_distances_m is not None:
        meta["focus_distances_m"] = [round(float(d), 6) for d in focus_distances_m]
    if camera.to_json():
        meta["camera"] = camera.to_json()
    meta.update(extra or {})
    path = Path(folder) / STACK_JSON
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path
