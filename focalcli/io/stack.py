"""The focal stack: one dataclass in memory, one folder layout on disk.

A stack folder holds images (png, jpg, tif; 8 or 16 bit; gray, RGB or RGBA; EXIF orientation honoured) and an
optional ``stack.json``::

    {"frames": ["a.png", "b.png"], "focus_distances_m": [0.5, 0.63],
     "camera": {"focal_length_mm": 50, "f_number": 2.0, "pixel_pitch_um": 5.6}}

Without ``stack.json`` the frames are the folder's images in natural sort order, and focus distances come from EXIF
``SubjectDistance`` when every frame has one. Frames are always ordered by increasing focus distance when distances
are known.

Code that reads a stack frame by frame takes a ``FrameSource``: a ``FocalStack`` (in memory), a ``StackFolder``
(decoded from disk when a frame is read) or an ``align.WarpedStack`` (warped when read) alike.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from focalcli.errors import InputError
from focalcli.io.atomic import atomic_path
from focalcli.io.images import (
    IMAGE_SUFFIXES,
    MIN_FRAME_SIDE,
    ImageInfo,
    decode_image,
    has_exif,
    open_pil,
    probe_image,
    read_image,
    write_image,
)

__all__ = [
    "Camera",
    "FocalStack",
    "FrameSource",
    "StackFolder",
    "as_stack_folder",
    "covered",
    "find_stack_tree",
    "find_stacks",
    "is_stack_folder",
    "natural_key",
    "read_stack",
    "scan_stack",
    "write_stack",
    "write_stack_json",
]

if TYPE_CHECKING:  # torch is imported where a FocalStack is built, so that the classic path starts without it
    import torch

STACK_JSON = "stack.json"
_SIDECARS = {".json", ".txt", ".md", ".xmp", ".pp3", ".ini", ".db", ".csv", ".yaml", ".yml", ".toml", ""}
_RAW = {".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf", ".pef", ".srw"}


@dataclass(frozen=True)
class Camera:
    """Camera optics; any field may be unknown (None)."""

    focal_length_mm: float | None = None  # lens focal length
    f_number: float | None = None  # N = focal length / aperture diameter
    pixel_pitch_um: float | None = None  # sensor pixel size at the stored image resolution

    def to_json(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class FrameSource(Protocol):
    """The frames of a stack, read one at a time, near to far: what depth, fusion, alignment and model inference
    read from a stack. ``FocalStack``, ``StackFolder`` and ``align.WarpedStack`` implement it."""

    camera: Camera

    @property
    def names(self) -> list[str]:
        """File name of each frame."""

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of every frame."""

    @property
    def bit_depth(self) -> int:
        """Bit depth of the source images (8 or 16)."""

    @property
    def streamed(self) -> bool:
        """True when a frame is decoded (or warped) each time it is read, False when the frames sit in memory."""

    def __len__(self) -> int:
        """Number of frames."""

    def distances(self) -> list[float] | None:
        """Focus distance of each frame in metres (increasing), or None when unknown."""

    def frame(self, index: int, native: bool = False) -> np.ndarray:
        """Frame ``index`` as HxWx3: float32 RGB in [0, 1], or with ``native`` the pixel type it is stored in
        (uint8/uint16 from files; float32 in memory)."""

    def cover(self, index: int) -> np.ndarray | None:
        """Which pixels frame ``index`` holds data for (HxW bool; an aligned frame does not cover the borders it was
        warped away from), or None when it covers every pixel."""

    def frame_path(self, index: int) -> Path | None:
        """The image file frame ``index`` is decoded from as it is, or None (in memory, or warped)."""


@dataclass
class FocalStack:
    """A focal stack in memory.

    Attributes:
        frames: float32 sRGB in [0, 1], near to far. Shape ``(N, 3, H, W)``.
        focus_distances_m: focus distance of each frame in metres, shape ``(N,)``, or None when unknown.
        camera: optics of the capture.
        names: file name of each frame.
        bit_depth: bit depth of the source images (8 or 16).
        coverage: which pixels of each frame hold image content, bool, shape ``(N, H, W)``; None = all of them.
            An aligned stack (``focalcli.align.align_stack``) has frames warped into the reference frame's grid,
            and the borders a frame does not cover hold no data of it: depth there is invalid.
    """

    frames: torch.Tensor
    focus_distances_m: torch.Tensor | None = None
    camera: Camera = field(default_factory=Camera)
    names: list[str] = field(default_factory=list)
    bit_depth: int = 8
    coverage: torch.Tensor | None = None

    def __post_init__(self):
        if self.frames.dim() != 4 or self.frames.shape[1] != 3:
            raise InputError(f"frames must be (N, 3, H, W), got {tuple(self.frames.shape)}")
        n = self.frames.shape[0]
        if not self.names:
            self.names = [f"frame_{i:03d}.png" for i in range(n)]
        if len(self.names) != n:
            raise InputError(f"{len(self.names)} names for {n} frames")
        if self.focus_distances_m is not None and self.focus_distances_m.shape != (n,):
            raise InputError(f"{tuple(self.focus_distances_m.shape)} focus distances for {n} frames")
        if self.coverage is not None and tuple(self.coverage.shape) != (n, *self.frames.shape[2:]):
            raise InputError(f"coverage of shape {tuple(self.coverage.shape)} for frames of shape "
                             f"{tuple(self.frames.shape)}")

    def __len__(self) -> int:
        return self.frames.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.frames.shape[2]), int(self.frames.shape[3])

    # --- FrameSource
    streamed = False

    def distances(self) -> list[float] | None:
        return None if self.focus_distances_m is None else self.focus_distances_m.double().tolist()

    def frame(self, index: int, native: bool = False) -> np.ndarray:
        """Frame ``index`` as HxWx3 float32 in [0, 1] (a copy; in memory the native type is float32 too)."""
        return np.ascontiguousarray(self.frames[index].permute(1, 2, 0).float().cpu().numpy())

    def cover(self, index: int) -> np.ndarray | None:
        return None if self.coverage is None else self.coverage[index].cpu().numpy()

    def frame_path(self, index: int) -> Path | None:
        return None


@dataclass(frozen=True)
class StackFolder:
    """A scanned stack folder: everything but the pixels, so frames can be streamed one at a time.

    Attributes:
        path: the folder.
        frame_paths: image files, near to far.
        focus_distances_m: one per frame (metres, increasing) or None.
        distance_source: where the distances came from: ``"stack.json"``, ``"exif"`` or None.
        camera: optics (from stack.json or EXIF).
        info: size, channels and bit depth of the first frame (all frames share the size).
        odd_size: images of another size than the stack's frames, left out (only ``scan_stack(...,
            same_size=False)`` leaves them out; by default they are an error).
    """

    path: Path
    frame_paths: tuple[Path, ...]
    focus_distances_m: tuple[float, ...] | None
    distance_source: str | None
    camera: Camera
    info: ImageInfo
    odd_size: tuple[Path, ...] = ()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.frame_paths]

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.info.height, self.info.width

    @property
    def bit_depth(self) -> int:
        return self.info.bit_depth

    streamed = True

    def distances(self) -> list[float] | None:
        return None if self.focus_distances_m is None else list(self.focus_distances_m)

    def cover(self, index: int) -> np.ndarray | None:
        return None

    def frame_path(self, index: int) -> Path | None:
        return self.frame_paths[index]

    @property
    def relative_names(self) -> list[str]:
        """Frame paths relative to the stack folder, as stack.json lists them (``sub/a.png``); unique per stack."""
        return [p.relative_to(self.path).as_posix() for p in self.frame_paths]

    def __len__(self) -> int:
        return len(self.frame_paths)

    def frame(self, index: int, native: bool = False) -> np.ndarray:
        """Frame ``index`` (near to far) as HxWx3: float32 in [0, 1], or the decoded pixel type (uint8/uint16)
        with ``native``.

        Raises:
            InputError: the frame is unreadable or its size differs from the stack's.
        """
        p = self.frame_paths[index]
        img = decode_image(p) if native else read_image(p)[0]
        h, w = self.info.height, self.info.width
        if img.shape[:2] != (h, w):
            raise InputError(
                f"{p}: frame size {img.shape[1]}x{img.shape[0]} differs from the stack's {w}x{h} "
                f"(align or resize the frames first)"
            )
        return img

    def iter_frames(self, native: bool = False) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(name, image HxWx3)`` near to far, decoding one frame at a time (see ``frame``)."""
        for i, p in enumerate(self.frame_paths):
            yield p.name, self.frame(i, native)


def as_stack_folder(stack: str | os.PathLike | StackFolder) -> StackFolder:
    """``stack`` itself when it is a ``StackFolder``, else the scanned folder it names (``scan_stack``)."""
    return stack if isinstance(stack, StackFolder) else scan_stack(stack)


def covered(stack: FrameSource) -> np.ndarray:
    """HxW bool: the pixels every frame of ``stack`` covers (all of them unless the stack was aligned)."""
    out = np.ones(stack.size, bool)
    for i in range(len(stack)):
        cover = stack.cover(i)
        if cover is not None:
            out &= cover
    return out


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


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


def is_stack_folder(folder: Path) -> bool:
    """Whether ``folder`` directly holds frames (images or a ``stack.json``)."""
    return (folder / STACK_JSON).is_file() or any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if not p.name.startswith(".")
    )


def find_stacks(folder: Path) -> Sequence[Path]:
    """The stack folders directly inside ``folder``, in natural order (``find_stack_tree`` searches deeper)."""
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((p for p in subs if is_stack_folder(p)), key=lambda p: natural_key(p.name))


def find_stack_tree(root: str | os.PathLike, *, exclude: Sequence[str | os.PathLike] = ()
                    ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every stack folder under ``root``, searched recursively, and the folders left out with the reason.

    A folder that holds frames (or a ``stack.json``) is a stack and is not searched further (its sub-folders may
    hold its frames); a folder without frames is searched. Hidden folders (``.name``) and the folders in
    ``exclude`` (e.g. the batch's own output folder) are ignored, and a folder reached twice through symbolic links
    is visited once.

    Returns:
        ``(stacks, skipped)``: stack folders in natural order (depth first), and ``(folder relative to root, why)``
        for every folder that is neither a stack nor holds one.
    """
    root = Path(root)
    stacks: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[Path] = {Path(p).resolve() for p in exclude}

    def visit(folder: Path) -> bool:
        """Search ``folder``; whether it holds a stack somewhere below."""
        real = folder.resolve()
        if real in seen:
            return False
        seen.add(real)
        subs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: natural_key(p.name))
        found = False
        for sub in subs:
            rel = sub.relative_to(root).as_posix()
            if sub.resolve() in seen:
                continue
            try:
                if is_stack_folder(sub):
                    stacks.append(sub)
                    found = True
                    continue
                entries = [p for p in sub.iterdir() if not p.name.startswith(".")]
            except OSError as e:
                skipped.append((rel, f"cannot be read ({e.strerror or e})"))
                continue
            if any(p.is_dir() for p in entries):
                found = visit(sub) or found  # its own leaves are listed if it holds no stack
                continue
            files = [p.name for p in entries if p.is_file()]
            skipped.append((rel, f"no image files ({len(files)} other file(s), e.g. {files[0]})" if files
                            else "empty"))
        return found

    visit(root)
    return stacks, skipped
