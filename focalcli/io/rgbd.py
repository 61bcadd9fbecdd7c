"""RGB-D readers: find the scenes under a folder and decode each into sRGB + metric depth.

Layouts found by ``find_rgbd(root)`` (searched recursively; names join the folder path with ``__``):

- folder pairs: ``D/rgb/NAME.{png,jpg,ppm}`` (or ``D/color/``) with ``D/depth/NAME.npy`` (float metres),
  ``NAME.png``/``.pgm`` (16-bit, metres = value / depth_scale, default 1000 = millimetres) or ``NAME.pfm``
  (float metres). A Metric3D ``D/test_annotations.json`` pairs the files and gives each its depth_scale and
  intrinsics. ``D/rgb.png`` + ``D/depth.png`` (+ ``intrinsics.npy``) is one scene named after D.
- Middlebury stereo: ``view1`` + ``disp1.png`` (2005/2006), ``im2`` + ``disp2.pgm`` (2001/2003), ``im0`` +
  ``disp0.pgm``, ``scene1.row3.col3`` + ``truedisp.row3.col3.pgm`` (tsukuba); 0 = unknown disparity.
- HCI 4D light field: ``input_Cam040.png`` (centre view) + ``gt_disp_lowres.pfm``.
- Open3D samples: ``NYU_color`` + ``NYU_depth.pgm`` (raw Kinect disparity counts, little-endian despite PGM;
  metres = 351.3 / (1092.5 - raw), 2047 = none), ``SUN_color`` + ``SUN_depth.png`` (16 bit rotated by 3 bits;
  metres = ((v >> 3) | (v << 13)) / 1000), ``TUM_color`` + ``TUM_depth.png`` (metres = v / 5000); any other
  ``X_color`` + ``X_depth`` pair is read as a folder pair.
- NYU Depth v2 labeled ``*.mat`` (MATLAB v7.3 = HDF5, read with h5py): datasets ``images`` (h5py shape
  (N, 3, W, H), uint8) and ``depths`` ((N, W, H), float metres): MATLAB stores arrays column-major, so each
  image is transposed back to (3, H, W). One scene per index.

Pseudo-depth from disparity (Middlebury, HCI): without the calibration (Middlebury's per-scene ``dmin`` offset
is not shipped with the data) metric depth is unknown. Inverse depth is affine in disparity for a rectified pair
(``1/Z = (d + dmin) / (f B)``), so we keep that form and ASSUME the scene's valid disparity range spans
``PSEUDO_NEAR_M`` .. ``PSEUDO_FAR_M`` (1 m .. 2 m, typical of the table-top scenes). Relative blur between pixels is
then right up to one scene-wide factor; samples carry ``pseudo_depth: true`` in their metadata.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from focalcli.errors import InputError
from focalcli.io.depth import valid_depth
from focalcli.io.images import read_image

__all__ = [
    "PSEUDO_FAR_M",
    "PSEUDO_NEAR_M",
    "RGBDSample",
    "RGBDScene",
    "disparity_to_pseudo_depth",
    "find_rgbd",
    "load_rgbd",
    "read_pfm",
    "split_scenes",
]

PSEUDO_NEAR_M = 1.0  # assumed distance of the largest valid disparity
PSEUDO_FAR_M = 2.0  # assumed distance of the smallest valid disparity
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


@dataclass
class RGBDSample:
    """A decoded scene: sRGB (3, H, W) float32 in [0, 1] and depth (1, H, W) float32 metres, 0 = invalid."""

    name: str
    rgb: torch.Tensor
    depth: torch.Tensor
    meta: dict = field(default_factory=dict)


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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e


def _header_size(path: Path, tokens: list[bytes], kind: str) -> tuple[int, int]:
    """Width and height from a PFM/PGM header: positive integers whose pixels fit in the file's 64-bit index."""
    try:
        w, h = int(tokens[1]), int(tokens[2])
    except ValueError as e:
        raise InputError(f"{path}: bad {kind} header ({e})") from e
    if w <= 0 or h <= 0 or w * h > 1 << 31:
        raise InputError(f"{path}: bad {kind} header (size {w}x{h})")
    return w, h


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel PFM (``Pf``) as float32 HxW, top row first (PFM stores rows bottom-up).

    Raises:
        InputError: not a PFM, a colour PFM, or truncated.
    """
    p = Path(path)
    data = _read_bytes(p)
    tokens = data.split(maxsplit=4)
    if len(tokens) < 5 or tokens[0] not in (b"Pf", b"PF"):
        raise InputError(f"{p}: not a PFM file")
    if tokens[0] == b"PF":
        raise InputError(f"{p}: colour PFM; a depth or disparity map must have one channel")
    w, h = _header_size(p, tokens, "PFM")
    try:
        scale = float(tokens[3])
    except ValueError as e:
        raise InputError(f"{p}: bad PFM header ({e})") from e
    if not np.isfinite(scale) or scale == 0:
        raise InputError(f"{p}: bad PFM header (scale {scale})")
    n = w * h * 4
    if len(tokens[4]) < n:
        raise InputError(f"{p}: truncated PFM ({len(tokens[4])} of {n} bytes)")
    arr = np.frombuffer(data[len(data) - n :], dtype="<f4" if scale < 0 else ">f4").reshape(h, w)
    return np.ascontiguousarray(arr[::-1]).astype(np.float32)


def _read_raw(path: Path) -> np.ndarray:
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError(f"{path}: not a readable depth/disparity image")
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a single-channel depth/disparity image, got {arr.shape[2]} channels")
    return arr


def _read_pgm_little_endian(path: Path) -> np.ndarray:
    data = _read_bytes(path)
    tokens = data.split(maxsplit=4)
    if len(tokens) < 5 or tokens[0] != b"P5":
        raise InputError(f"{path}: not a binary PGM (P5) file")
    w, h = _header_size(path, tokens, "PGM")
    try:
        maxval = int(tokens[3])
    except ValueError as e:
        raise InputError(f"{path}: bad PGM header ({e})") from e
    if not 256 <= maxval <= 65535:  # 1-byte samples (maxval < 256) are no Kinect disparity
        raise InputError(f"{path}: bad PGM header (maxval {maxval}; a 16-bit PGM has 256..65535)")
    n = w * h * 2
    if len(tokens[4]) < n:
        raise InputError(f"{path}: truncated PGM ({len(tokens[4])} of {n} bytes)")
    return np.frombuffer(data[-n:], dtype="<u2").reshape(h, w)


def disparity_to_pseudo_depth(disparity: np.ndarray, valid: np.ndarray,
                              near: float = PSEUDO_NEAR_M, far: float = PSEUDO_FAR_M) -> np.ndarray:
    """Pseudo-depth (m) from disparity: inverse depth affine in disparity, valid range mapped to [near, far].

    The largest valid disparity lands at ``near``, the smallest at ``far``; invalid pixels get 0.
    """
    d = disparity.astype(np.float64)
    if not valid.any():
        return np.zeros_like(d, dtype=np.float32)
    lo, hi = float(d[valid].min()), float(d[valid].max())
    t = (d - lo) / (hi - lo) if hi > lo else np.ones_like(d)
    inv = 1.0 / far + t * (1.0 / near - 1.0 / far)
    return np.where(valid, 1.0 / inv, 0.0).astype(np.float32)


def _image_rgb(scene: RGBDScene) -> np.ndarray:
    img, _ = read_image(scene.rgb)  # (H, W, 3)
    return img.transpose(2, 0, 1)  # (3, H, W)


def _middlebury(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    disp = _read_raw(scene.depth).astype(np.float32)
    return _image_rgb(scene), disparity_to_pseudo_depth(disp, disp > 0), {"pseudo_depth": True,
                                                                          "units": "pseudo-metres"}


def _hci4d(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    disp = read_pfm(scene.depth)
    return _image_rgb(scene), disparity_to_pseudo_depth(disp, np.isfinite(disp)), {"pseudo_depth": True,
                                                                                    "units": "pseudo-metres"}


def _nyu_raw(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    raw = _read_pgm_little_endian(scene.depth).astype(np.float64)
    ok = raw < 1092.5 - 1e-3  # Kinect counts at or beyond 1092.5 have no depth (2047 = no reading)
    return _image_rgb(scene), np.where(ok, 351.3 / np.where(ok, 1092.5 - raw, 1.0), 0.0).astype(np.float32), {}


def _sun(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    v = _read_raw(scene.depth).astype(np.uint16)
    v = (v >> 3) | (v << 13)  # uint16 arithmetic keeps the low 16 bits
    return _image_rgb(scene), v.astype(np.float32) / 1000.0, {}


def _tum(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    return _image_rgb(scene), _read_raw(scene.depth).astype(np.float32) / 5000.0, {}


def _folder(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    p = scene.depth
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            d = np.load(p, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"{p}: not a readable .npy depth map ({e})") from e
        d = np.squeeze(d)
        if d.ndim != 2:
            raise InputError(f"{p}: expected an HxW depth map, got shape {d.shape}")
        return _image_rgb(scene), d.astype(np.float32), {}
    if suffix == ".pfm":
        return _image_rgb(scene), read_pfm(p), {}
    raw = _read_raw(p)
    if raw.dtype != np.uint16:
        raise InputError(f"{p}: depth images must be 16-bit (value / {scene.depth_scale:g} = metres), got {raw.dtype}")
    return _image_rgb(scene), raw.astype(np.float32) / scene.depth_scale, {"depth_scale": scene.depth_scale}


def _nyu_mat(scene: RGBDScene) -> tuple[np.ndarray, np.ndarray, dict]:
    import h5py

    with h5py.File(scene.depth, "r") as f:
        rgb = np.asarray(f["images"][scene.index]).transpose(0, 2, 1)  # (3, W, H) column-major -> (3, H, W)
        depth = np.asarray(f["depths"][scene.index], dtype=np.float32).T  # (W, H) -> (H, W) metres
    return rgb.astype(np.float32) / 255.0, depth, {"index": scene.index}


# RGBDScene.kind -> reader returning (sRGB (3, H, W) float32, depth (H, W) metres, metadata)
_READERS: dict[str, Callable[[RGBDScene], tuple[np.ndarray, np.ndarray, dict]]] = {
    "folder": _folder, "middlebury": _middlebury, "hci4d": _hci4d, "nyu-raw": _nyu_raw, "sun": _sun, "tum": _tum,
    "nyu-mat": _nyu_mat,
}


def load_rgbd(scene: RGBDScene) -> RGBDSample:
    """Decode a scene into sRGB (3, H, W) and metric depth (1, H, W) (0 = invalid; NaN/inf/negative become 0).

    Raises:
        InputError: unreadable files, or depth and rgb of different sizes.
    """
    meta = {"kind": scene.kind, "rgb": str(scene.rgb), "depth": str(scene.depth)}
    if scene.intrinsics is not None:
        meta["intrinsics"] = list(scene.intrinsics)
    rgb, depth, extra = _READERS[scene.kind](scene)
    meta.update(extra)
    if depth.shape != rgb.shape[1:]:
        raise InputError(f"{scene.name}: depth is {depth.shape[1]}x{depth.shape[0]} but rgb is "
                         f"{rgb.shape[2]}x{rgb.shape[1]} ({scene.depth.name}, {scene.rgb.name})")
    depth = np.where(valid_depth(depth), depth, 0.0).astype(np.float32)
    return RGBDSample(scene.name, torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)),
                      torch.from_numpy(depth)[None], meta)
