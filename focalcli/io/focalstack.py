"""The focal stack in memory and on disk: ``FocalStack`` (tensors), ``StackFolder`` (a scanned folder, decoded frame
by frame), ``Camera`` and the ``FrameSource`` protocol every stack reader takes. Reading, writing and finding stack
folders is ``focalcli.io.stack_folder`` and ``focalcli.io.stack_tree``; ``focalcli.io.stack`` re-exports all of it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from focalcli.errors import InputError
from focalcli.io.images import (
    ImageInfo,
    decode_image,
    read_image,
    to_float,
)

if TYPE_CHECKING:  # torch is imported where a FocalStack is built, so that the classic path starts without it
    import torch

STACK_JSON = "stack.json"


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


KEEP_BYTES = 256 * 2**20  # ``keep_frames``: decoded frames kept in memory, at most this much of them


class KeptFrames:
    """A streamed ``FrameSource`` whose frames are kept once decoded, up to ``budget_bytes`` of them, so that several
    passes over one stack (the alignment check, registration, warping, the depth pass) decode each frame once; frames
    beyond the budget are decoded whenever they are read. Made by ``keep_frames``.

    Frames are kept in their native type and handed out read-only (``frame(i, native=True)`` is the kept array
    itself); a consumer that writes into a frame must copy it. Decoding a 640x480 PNG takes about 9 ms on a 2-core
    CPU, a 6000x4000 one about 0.6 s: reading a stack twice, as the check and the depth pass of ``focal predict``
    did, cost a fifth of the prediction of a small stack.
    """

    streamed = True  # a frame not kept is decoded when read

    def __init__(self, source: FrameSource, budget_bytes: int = KEEP_BYTES):
        self.source = source
        self._kept: dict[int, np.ndarray] = {}
        self._left = budget_bytes
        self._last_pass = False
        self._lock = threading.Lock()

    def last_pass(self) -> None:
        """The pass that starts now reads each frame once and is the last: no frame is kept any more, and each kept
        one is dropped as it is read (memory goes down as the pass goes on). A frame read again is decoded again."""
        with self._lock:
            self._last_pass, self._left = True, 0

    @property
    def camera(self) -> Camera:
        return self.source.camera

    @property
    def names(self) -> list[str]:
        return self.source.names

    @property
    def size(self) -> tuple[int, int]:
        return self.source.size

    @property
    def bit_depth(self) -> int:
        return self.source.bit_depth

    def __len__(self) -> int:
        return len(self.source)

    def distances(self) -> list[float] | None:
        return self.source.distances()

    def frame(self, index: int, native: bool = False) -> np.ndarray:
        img = self._kept.pop(index, None) if self._last_pass else self._kept.get(index)
        if img is None:  # two threads may decode one frame at once: both results are the same
            img = self.source.frame(index, native=True)
            img.flags.writeable = False
            with self._lock:
                if index not in self._kept and img.nbytes <= self._left:
                    self._kept[index] = img
                    self._left -= img.nbytes
        return img if native else to_float(img)

    def cover(self, index: int) -> np.ndarray | None:
        return self.source.cover(index)

    def frame_path(self, index: int) -> Path | None:
        return self.source.frame_path(index)


def keep_frames(stack: FrameSource, budget_bytes: int = KEEP_BYTES) -> FrameSource:
    """``stack`` as a ``KeptFrames`` (up to ``budget_bytes`` of decoded frames kept) when it decodes its frames when
    read; else ``stack`` itself (in memory already, or kept already)."""
    if isinstance(stack, KeptFrames) or not stack.streamed:
        return stack
    return KeptFrames(stack, budget_bytes)


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
