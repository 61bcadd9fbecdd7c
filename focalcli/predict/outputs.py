"""The outputs of one prediction: their names and formats (``PredictOutputs``), checked before any work, and what
the sidecar records about the result (units note, model file record, point cloud).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from focalcli.errors import ConfigError, InputError, OutputError
from focalcli.io.atomic import (
    check_output,
)
from focalcli.io.depth import COLORMAPS, DEPTH_SUFFIXES, DepthResult, write_depth
from focalcli.io.images import write_image
from focalcli.io.stack import (
    StackFolder,
)

AIF_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
CONFIDENCE_SUFFIXES = (".npy", ".png", ".tif", ".tiff")
PLY_SUFFIXES = (".ply",)
UNIT_NOTES = {
    "m": "depth in metres",
    "frame_index": "focus distances unknown: depth is in frame-index units, 1 = nearest frame, N = farthest",
    "relative": "focus distances unknown: depth is relative (right in order and shape, not in scale)",
}
INVALID_NOTE = "0 (NaN in memory) = no estimate: pixels that not every frame covers after alignment"


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
    import hashlib  # here: its OpenSSL library costs ~3 ms of every start, and only --method model needs it

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
