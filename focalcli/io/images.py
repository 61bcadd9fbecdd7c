"""Read and write images: 8/16-bit, gray/RGB/RGBA, EXIF orientation honoured; float32 [0, 1] RGB inside.

HWC numpy arrays exist only inside ``focalcli.io``; everything else sees tensors ``(C, H, W)``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from focalcli.errors import InputError, OutputError
from focalcli.io.atomic import atomic_path

__all__ = ["IMAGE_SUFFIXES", "MIN_FRAME_SIDE", "ImageInfo", "decode_image", "has_exif", "imwrite", "open_pil",
           "probe_image", "read_image", "to_float", "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".webp")
_JPEG = (".jpg", ".jpeg")
_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR  # keeps 16 bit, applies EXIF orientation, drops alpha
MIN_FRAME_SIDE = 8  # px: smaller frames hold no usable focus evidence (and registration needs a few pixels)
# libjpeg reports damaged data as warnings on stderr and still returns an image; these lines mean the pixels are wrong
_LIBJPEG_CORRUPT = ("Corrupt JPEG data", "Premature end of JPEG file", "Invalid SOS parameters",
                    "Inconsistent progression sequence", "Bogus marker length")
_STDERR_LOCK = threading.Lock()

cv2.setNumThreads(max(1, os.cpu_count() or 1))
# OpenCV prints libpng/libjpeg warnings itself; we report failures as one line instead.
with contextlib.suppress(AttributeError):  # very old OpenCV has no logging module
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@dataclass(frozen=True)
class ImageInfo:
    """What ``probe_image`` learns from an image header without decoding the pixels."""

    width: int  # after EXIF orientation
    height: int
    channels: int  # 1 gray, 3 RGB, 4 RGBA (alpha is dropped on read)
    bit_depth: int  # 8 or 16 (32 for float TIFF)


_BITS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}


def to_float(img: np.ndarray) -> np.ndarray:
    """uint8/uint16/float32 pixels to float32 in [0, 1] (one pass, no extra copy)."""
    if img.dtype == np.float32:
        return np.clip(img, 0.0, 1.0)
    out = img.astype(np.float32)
    out *= 1.0 / np.iinfo(img.dtype).max
    return out


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an image as RGB float32 in [0, 1].

    Args:
        path: a png/jpg/tif/... file; gray is repeated to 3 channels, alpha is dropped.

    Returns:
        ``(image HxWx3 float32, bit_depth)`` with ``bit_depth`` 8 or 16 (32 for float TIFF).

    Raises:
        InputError: missing, unreadable, truncated or not an image.
    """
    img = decode_image(path)
    return to_float(img), _BITS[img.dtype]


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image to its native pixel type: HxWx3 RGB uint8, uint16 or float32 (see ``read_image``)."""
    p = Path(path)
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from e
    jpeg = p.suffix.lower() in _JPEG
    if jpeg and b"\xff\xd9" not in data[-65536:].tobytes():
        raise InputError(f"{p}: truncated JPEG (no end-of-image marker)")
    if jpeg and data.size:
        with _c_stderr_lines() as messages:
            img = cv2.imdecode(data, _READ_FLAGS)
        corrupt = [m for m in messages if m.startswith(_LIBJPEG_CORRUPT)]
        if corrupt:
            raise InputError(f"{p}: damaged JPEG data (libjpeg: {corrupt[0].rstrip('.')})")
    else:
        img = cv2.imdecode(data, _READ_FLAGS) if data.size else None
    if img is None:
        raise InputError(f"{p}: not a readable image (corrupt, truncated or an unsupported format)")
    if img.dtype not in _BITS:
        raise InputError(f"{p}: unsupported pixel type {img.dtype} (use 8- or 16-bit images)")
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@contextlib.contextmanager
def _c_stderr_lines() -> Iterator[list[str]]:
    """Collect what C libraries write to file descriptor 2 while the block runs (libjpeg warnings).

    Lines that are not libjpeg's are written back to stderr afterwards, so nothing else is lost. Without a usable
    descriptor 2 the block runs uncaptured.
    """
    lines: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            yield lines
            return
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace")
            lines.extend(text.splitlines())
            other = "".join(line + "\n" for line in lines if not line.startswith(_LIBJPEG_CORRUPT))
            if other:
                with contextlib.suppress(OSError, ValueError):
                    sys.stderr.write(other)


@contextlib.contextmanager
def open_pil(path: str | os.PathLike):
    """``PIL.Image.open`` for untrusted files: a header declaring a gigantic image (a decompression bomb) or an
    unreadable file is an ``InputError``, and Pillow's bomb warning is not printed.

    Raises:
        InputError: not an image Pillow can open, or more pixels than Pillow's ``MAX_IMAGE_PIXELS`` safety limit.
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
    except Image.DecompressionBombError as e:
        raise InputError(f"{p}: the header declares an image too large to read ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError(f"{p}: not a readable image ({e})") from e
    with im:
        yield im


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """Read an image's size, channels and bit depth from its header (fast; no full decode).

    Raises:
        InputError: the file is not an image.
    """
    p = Path(path)
    png = _png_header(p)
    if png is not None and not png[4]:  # a PNG without EXIF: its IHDR chunk says it all, no need for Pillow
        w, h, bits, channels, _ = png
        if w * h > _MAX_PIXELS:
            raise InputError(f"{p}: the header declares an image too large to read ({w}x{h} pixels)")
        return ImageInfo(width=w, height=h, channels=channels, bit_depth=bits)
    with open_pil(p) as im:
        try:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
            mode = im.mode
        except (OSError, ValueError, SyntaxError) as e:
            raise InputError(f"{p}: not a readable image ({e})") from e
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    channels = {"L": 1, "I;16": 1, "I;16B": 1, "I": 1, "F": 1, "LA": 2, "RGBA": 4, "P": 3}.get(mode, 3)
    bits = 16 if mode.startswith("I;16") or mode in ("I",) else 32 if mode == "F" else 8
    if mode in ("RGB", "RGBA") and p.suffix.lower() in (".png", ".tif", ".tiff"):
        bits = _png_tiff_bit_depth(im, p)
    return ImageInfo(width=w, height=h, channels=channels, bit_depth=bits)


_MAX_PIXELS = 2 * 89_478_485  # Pillow's decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS), without Pillow
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # IHDR colour type -> channels (a palette image reads as RGB)


def _png_header(path: Path) -> tuple[int, int, int, int, bool] | None:
    """``(width, height, bit depth, channels, has EXIF)`` of a PNG from its chunk headers; None if not a PNG.

    Pillow's ``getexif`` on a PNG decodes every pixel to look for an ``eXIf`` chunk after the image data (~10 ms per
    640x480 frame); walking the chunk headers (seeking past their data) finds it without decoding.
    """
    try:
        with open(path, "rb") as f:
            if f.read(8) != _PNG_SIGNATURE:
                return None
            ihdr = f.read(25)  # length, "IHDR", width, height, bit depth, colour type, 3 more bytes, CRC
            if len(ihdr) < 25 or ihdr[4:8] != b"IHDR" or ihdr[17] not in _PNG_CHANNELS:
                return None
            w, h = int.from_bytes(ihdr[8:12], "big"), int.from_bytes(ihdr[12:16], "big")
            bits, channels = (16 if ihdr[16] == 16 else 8), _PNG_CHANNELS[ihdr[17]]
            while True:
                head = f.read(8)
                if len(head) < 8 or head[4:] == b"IEND":
                    return w, h, bits, channels, False
                if head[4:] == b"eXIf":
                    return w, h, bits, channels, True
                f.seek(int.from_bytes(head[:4], "big") + 4, 1)  # chunk data + CRC
    except OSError:
        return None


def has_exif(path: str | os.PathLike) -> bool:
    """Whether an image file may hold EXIF: False only when it certainly holds none (a PNG without ``eXIf``)."""
    png = _png_header(Path(path))
    return png is None or png[4]


def _png_tiff_bit_depth(im, p: Path) -> int:
    # Pillow reads 16-bit RGB as 8-bit RGB; the PNG header and TIFF BitsPerSample tag still say 16.
    if p.suffix.lower() == ".png":
        with open(p, "rb") as f:
            head = f.read(26)
        return int(head[24]) if len(head) == 26 else 8
    bps = im.tag_v2.get(258) if hasattr(im, "tag_v2") else None
    return int(bps[0] if isinstance(bps, tuple) else bps or 8)


def write_image(path: str | os.PathLike, image: np.ndarray, bit_depth: int = 8) -> None:
    """Write an RGB (HxWx3) or gray (HxW) float image in [0, 1] atomically.

    Args:
        path: destination; the extension picks the format (png, jpg, tif, ...).
        image: float array in [0, 1].
        bit_depth: 8 or 16 (16 is kept for png/tif; JPEG is always 8).

    Raises:
        OutputError: the format cannot be written.
    """
    p = Path(path)
    if p.suffix.lower() in _JPEG or p.suffix.lower() in (".bmp", ".webp"):
        bit_depth = 8
    scale, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    out = (np.clip(image, 0.0, 1.0) * scale + 0.5).astype(dtype)
    if out.ndim == 3:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if p.suffix.lower() in _JPEG else []
    with atomic_path(p) as tmp:
        imwrite(tmp, out, params, shown=p)


def imwrite(path: str | os.PathLike, array: np.ndarray, params: list[int] | tuple[int, ...] = (), *,
            shown: str | os.PathLike | None = None) -> None:
    """``cv2.imwrite`` that never fails silently (OpenCV returns False on a full disk).

    Args:
        path: the file to write (the extension picks the format).
        array: the pixels, as OpenCV takes them (BGR order).
        params: OpenCV write parameters.
        shown: the name to put in messages (the final output when ``path`` is a temporary file).

    Raises:
        OutputError: OpenCV cannot write this format, or the write failed (disk full, I/O error).
    """
    shown = shown or path
    try:
        supported = cv2.haveImageWriter(str(path))
        ok = supported and cv2.imwrite(str(path), array, list(params))
    except cv2.error as e:
        raise OutputError(f"{shown}: cannot write this format ({e.err})") from e
    if not supported:
        raise OutputError(f"{shown}: cannot write this format")
    if not ok:
        raise OutputError(f"{shown}: cannot write (disk full or an I/O error)")
