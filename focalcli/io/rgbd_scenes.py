"""Finding RGB-D scenes: ``find_rgbd`` walks a folder and recognises each layout (listed in ``focalcli.io.rgbd``),
without reading pixels; ``split_scenes`` holds every K-th scene out. Decoding is ``focalcli.io.rgbd_decode``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from focalcli.errors import InputError

RGB_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff")
DEPTH_SUFFIXES = (".npy", ".png", ".pgm", ".pfm", ".tif", ".tiff")
_MIDDLEBURY = (("view1", "disp1"), ("im2", "disp2"), ("im0", "disp0"), ("scene1.row3.col3", "truedisp.row3.col3"))
_OPEN3D_KINDS = {"NYU": "nyu-raw", "SUN": "sun", "TUM": "tum"}


@dataclass(frozen=True)
class RGBDScene:
    """Where one RGB-D scene lives and how to decode it (no pixels are read by ``find_rgbd``)."""

    name: str  # unique, file-name safe
    kind: str  # folder, middlebury, hci4d, nyu-raw, sun, tum, nyu-mat
    rgb: Path
    depth: Path  # the .mat file for nyu-mat
    depth_scale: float = 1000.0  # folder pngs: stored value per metre
    index: int | None = None  # nyu-mat: image index
    intrinsics: tuple[float, ...] | None = None  # (fx, fy, cx, cy) in pixels when known


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "scene"


def _name(root: Path, folder: Path, stem: str | None) -> str:
    parts = list(folder.relative_to(root).parts)
    if stem is not None:
        parts.append(stem)
    return _safe("__".join(parts) if parts else root.name)


def _find(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    for s in suffixes:
        p = folder / (stem + s)
        if p.is_file():
            return p
    return None


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in suffixes
            and not p.name.startswith(".")}


def _pairs_folder(root: Path, d: Path, depth_scale: float | None) -> list[RGBDScene]:
    rgb_dir = d / "rgb" if (d / "rgb").is_dir() else d / "color"
    ann = d / "test_annotations.json"
    if ann.is_file():  # Metric3D layout: explicit pairs with their own depth scale and intrinsics
        try:
            files = json.loads(ann.read_text(encoding="utf-8"))["files"]
            entries = [(d / Path(e["rgb"]).parent.name / Path(e["rgb"]).name,
                        d / Path(e["depth"]).parent.name / Path(e["depth"]).name,
                        float(e.get("depth_scale", 1000.0)), tuple(e["cam_in"]) if "cam_in" in e else None)
                       for e in files]
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{ann}: not a Metric3D annotation file ({e})") from e
        scenes = []
        for rgb, depth, scale, k in sorted(entries):
            if not rgb.is_file() or not depth.is_file():
                raise InputError(f"{ann}: lists {rgb.name} / {depth.name}, which are missing")
            scenes.append(RGBDScene(_name(root, d, rgb.stem), "folder", rgb, depth,
                                    depth_scale if depth_scale else scale, intrinsics=k))
        return scenes
    rgbs, depths = _files(rgb_dir, RGB_SUFFIXES), _files(d / "depth", DEPTH_SUFFIXES)
    missing = sorted(set(rgbs) - set(depths))
    if missing:
        raise InputError(f"{d}: {rgb_dir.name}/{missing[0]} has no depth/{missing[0]}.(npy|png|pfm) "
                         f"({len(missing)} unmatched)")
    return [RGBDScene(_name(root, d, stem), "folder", rgbs[stem], depths[stem], depth_scale or 1000.0)
            for stem in sorted(rgbs)]


def _scenes_in(root: Path, d: Path, depth_scale: float | None) -> tuple[list[RGBDScene], bool]:
    """Scenes directly in folder ``d``; the flag says whether to stop descending (d is a pairs folder)."""
    if (d / "depth").is_dir() and ((d / "rgb").is_dir() or (d / "color").is_dir()):
        return _pairs_folder(root, d, depth_scale), True
    scenes = []
    for rgb_stem, disp_stem in _MIDDLEBURY:
        rgb, disp = _find(d, rgb_stem, (".ppm", ".png")), _find(d, disp_stem, (".png", ".pgm"))
        if rgb and disp:
            scenes.append(RGBDScene(_name(root, d, None), "middlebury", rgb, disp))
            break
    rgb, disp = d / "input_Cam040.png", d / "gt_disp_lowres.pfm"
    if rgb.is_file() and disp.is_file():
        scenes.append(RGBDScene(_name(root, d, None), "hci4d", rgb, disp))
    rgb, depth = _find(d, "rgb", RGB_SUFFIXES), _find(d, "depth", DEPTH_SUFFIXES)
    if rgb and depth:
        k = None
        if (d / "intrinsics.npy").is_file():
            k = _read_intrinsics(d / "intrinsics.npy")
        scenes.append(RGBDScene(_name(root, d, None), "folder", rgb, depth, depth_scale or 1000.0, intrinsics=k))
    for p in sorted(d.glob("*_color.*")):
        prefix = p.name[: -len("_color" + p.suffix)]
        depth = _find(d, prefix + "_depth", DEPTH_SUFFIXES)
        if depth is not None and p.suffix.lower() in RGB_SUFFIXES:
            kind = _OPEN3D_KINDS.get(prefix, "folder")
            scenes.append(RGBDScene(_name(root, d, prefix), kind, p, depth, depth_scale or 1000.0))
    for p in sorted(d.glob("*.mat")):
        scenes.extend(_mat_scenes(root, d, p))
    return scenes, False


def _mat_scenes(root: Path, d: Path, path: Path) -> list[RGBDScene]:
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - optional extra
        raise InputError(f"{path}: reading NYU .mat files needs h5py (pip install 'focalcli[h5]')") from e
    try:
        with h5py.File(path, "r") as f:
            if not all(isinstance(f.get(k), h5py.Dataset) and f[k].ndim >= 3 for k in ("images", "depths")):
                raise InputError(f"{path}: not an NYU Depth v2 labeled file (no 'images' and 'depths' datasets)")
            n_img, n_dep = f["images"].shape[0], f["depths"].shape[0]
    except OSError as e:
        raise InputError(f"{path}: not a MATLAB v7.3 (HDF5) file ({e})") from e
    if n_img != n_dep:
        raise InputError(f"{path}: {n_img} images but {n_dep} depth maps")
    return [RGBDScene(_name(root, d, f"{path.stem}_{i:05d}"), "nyu-mat", path, path, index=i) for i in range(n_img)]


def find_rgbd(root: str | os.PathLike, depth_scale: float | None = None) -> list[RGBDScene]:
    """Find every RGB-D scene under ``root`` (see the module docstring for the layouts).

    Args:
        root: a folder.
        depth_scale: stored depth-PNG value per metre for folder pairs (default 1000, millimetres); Metric3D
            annotations give their own unless this is set.

    Raises:
        InputError: ``root`` is missing, holds no known layout, a pairs folder has unmatched files, or two scenes
            get the same name.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    scenes: list[RGBDScene] = []
    seen: set[str] = set()
    for d, subdirs, _ in os.walk(root, followlinks=True):  # symlinked datasets are common
        real = os.path.realpath(d)
        if real in seen:  # a link cycle
            subdirs[:] = []
            continue
        seen.add(real)
        subdirs[:] = sorted(s for s in subdirs if not s.startswith("."))
        found, stop = _scenes_in(root, Path(d), depth_scale)
        scenes.extend(found)
        if stop:
            subdirs[:] = []
    if not scenes:
        raise InputError(f"{root}: no RGB-D scenes found (expected rgb/ + depth/ folders, Middlebury view/disp "
                         "files, X_color + X_depth pairs or an NYU .mat)")
    names = [s.name for s in scenes]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"{root}: two scenes would both be called {dup[0]!r}; rename one")
    return scenes


def split_scenes(scenes: list[RGBDScene], holdout: int) -> tuple[list[RGBDScene], list[RGBDScene]]:
    """Split scenes into (training, held out): every ``holdout``-th scene, starting with the first, is held out.

    The order is the one ``find_rgbd`` returns (sorted by folder and name), so the split of a dataset is fixed.

    Args:
        scenes: scenes in ``find_rgbd`` order.
        holdout: K >= 0; scenes 0, K, 2K, ... are held out. 0 holds out nothing.

    Raises:
        ValueError: ``holdout`` is negative.
    """
    if holdout < 0:
        raise ValueError(f"holdout must be >= 0, got {holdout}")
    if holdout == 0:
        return list(scenes), []
    train = [s for i, s in enumerate(scenes) if i % holdout != 0]
    held = [s for i, s in enumerate(scenes) if i % holdout == 0]
    return train, held


def _read_intrinsics(path: Path) -> tuple[float, float, float, float]:
    """``(fx, fy, cx, cy)`` from a 3x3 camera matrix saved with ``numpy.save``.

    Raises:
        InputError: unreadable, not a finite 3x3 numeric matrix, or non-positive focal lengths.
    """
    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{path}: not a readable .npy file ({e})") from e
    if not isinstance(m, np.ndarray) or m.shape != (3, 3) or m.dtype.kind not in "uif" or not np.isfinite(m).all():
        raise InputError(f"{path}: expected a finite 3x3 camera matrix, got {getattr(m, 'dtype', type(m))} "
                         f"{getattr(m, 'shape', '')}")
    k = (float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]))
    if k[0] <= 0 or k[1] <= 0:
        raise InputError(f"{path}: focal lengths fx, fy must be > 0, got {k[0]}, {k[1]}")
    return k
