"""Read and write images: 8/16-bit, gray/RGB/RGBA, EXIF orientation honoured; float32 [0, 1] RGB inside.

HWC numpy arrays exist only inside ``focalcli.io``; everything else sees tensors ``(C, H, W)``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from focalcli.errors import InputError, OutputError
from focalcli.io.atomic import atomic_path

__all__ = ["IMAGE_SUFFIXES", "ImageInfo", "decode_image", "has_exif", "probe_image", "read_image", "to_float",
           "write_image"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm", ".pgm", ".webp")
_JPEG = (".jpg", ".jpeg")
_READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR  # keeps 16 bit, applies EXIF orientation, drops alpha

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
    if p.suffix.lower() in _JPEG and b"\xff\xd9" not in data[-65536:].tobytes():
        raise InputError(f"{p}: truncated JPEG (no end-of-image marker)")
    img = cv2.imdecode(data, _READ_FLAGS) if data.size else None
    if img is None:
        raise InputError(f"{p}: not a readable image (corrupt, truncated or an unsupported format)")
    if img.dtype not in _BITS:
        raise InputError(f"{p}: unsupported pixel type {img.dtype} (use 8- or 16-bit images)")
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """Read an image's size, channels and bit depth from its header (fast; no full decode).

    Raises:
        InputError: the file is not an image.
    """
    p = Path(path)
    png = _png_header(p)
    if png is not None and not png[4]:  # a PNG without EXIF: its IHDR chunk says it all, no need for Pillow
        w, h, bits, channels, _ = png
        return ImageInfo(width=w, height=h, channels=channels, bit_depth=bits)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
            mode = im.mode
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"{p}: not a readable image ({e})") from e
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    channels = {"L": 1, "I;16": 1, "I;16B": 1, "I": 1, "F": 1, "LA": 2, "RGBA": 4, "P": 3}.get(mode, 3)
    bits = 16 if mode.startswith("I;16") or mode in ("I",) else 32 if mode == "F" else 8
    if mode in ("RGB", "RGBA") and p.suffix.lower() in (".png", ".tif", ".tiff"):
        bits = _png_tiff_bit_depth(im, p)
    return ImageInfo(width=w, height=h, channels=channels, bit_depth=bits)


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
        try:
            ok = cv2.imwrite(str(tmp), out, params)
        except cv2.error as e:
            raise OutputError(f"{p}: cannot write this format ({e.err})") from e
        if not ok:
            raise OutputError(f"{p}: cannot write this format")
