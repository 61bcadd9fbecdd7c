"""Single-channel float OpenEXR files (FoD500 depth maps).

Decoders, tried in this order:

1. the ``OpenEXR`` package (``pip install 'focalcli[exr]'``; reads every compression OpenEXR has, PIZ included);
2. OpenCV, when its build has the OpenEXR codec and ``OPENCV_IO_ENABLE_OPENEXR=1`` was set before ``cv2`` was first
   imported. The opencv-python-headless 5.0 wheels have no EXR codec at all, so on most installs only (1) works.

Without either, reading raises ``InputError`` saying what to install.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from focalcli.errors import InputError, OutputError

__all__ = ["exr_backend", "read_exr", "write_exr"]

_CHANNELS = ("Y", "Z", "R", "V", "depth", "Depth")  # preferred channel names, in order
_MISSING = "cannot decode .exr here: install the OpenEXR package (pip install 'focalcli[exr]')"


def exr_backend() -> str | None:
    """``"openexr"``, ``"opencv"`` or None: what ``read_exr`` will use."""
    import importlib.util

    if importlib.util.find_spec("OpenEXR") is not None:
        return "openexr"
    import cv2

    return "opencv" if cv2.haveImageReader("x.exr") and os.environ.get("OPENCV_IO_ENABLE_OPENEXR") == "1" else None


def read_exr(path: str | os.PathLike) -> np.ndarray:
    """Read the first depth-like channel of an EXR file as HxW float32 (channel order: Y, Z, R, V, depth, first).

    Raises:
        InputError: no decoder, or the file is missing or unreadable.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    backend = exr_backend()
    if backend is None:
        raise InputError(f"{p}: {_MISSING}")
    if backend == "openexr":
        import OpenEXR

        try:
            with OpenEXR.File(str(p), separate_channels=True) as f:
                channels = {k: v.pixels for k, v in f.channels().items()}
        except (RuntimeError, OSError, ValueError) as e:  # what the binding raises for corrupt files
            raise InputError(f"{p}: not a readable EXR file ({e})") from e
        name = next((c for c in _CHANNELS if c in channels), sorted(channels)[0])
        d = channels[name]
    else:
        import cv2

        d = cv2.imread(str(p), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
        if d is None:
            raise InputError(f"{p}: not a readable EXR file")
        d = d[..., 2] if d.ndim == 3 else d  # OpenCV gives BGR: take R
    return np.ascontiguousarray(d, dtype=np.float32)


def write_exr(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write an HxW float32 map as a one-channel (``Y``) ZIP-compressed EXR file (used by tests and tools).

    Raises:
        OutputError: no EXR encoder is available.
    """
    backend = exr_backend()
    d = np.ascontiguousarray(depth, dtype=np.float32)
    if backend == "openexr":
        import OpenEXR

        with OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, {"Y": d}) as f:
            f.write(str(path))
    elif backend == "opencv":
        import cv2

        cv2.imwrite(str(path), d)
    else:
        raise OutputError(f"{path}: {_MISSING}")
