"""FoD500 (Maximov et al., "Focus on defocus", CVPR 2020) as a folder of files.

Each scene has five frames ``*All.tif`` focused at 0.1, 0.15, 0.3, 0.7 and 1.5 m and one depth map ``*Dpt.exr``
in metres. Following the published loaders, files are matched by natural sort order: the k-th ``*Dpt.exr`` belongs
to ``*All.tif`` files 5k .. 5k+4 (near to far). Scenes 0-399 are the training split and 400-499 the test split.
Depth is read with ``focalcli.io.exr`` (the OpenEXR package, ``pip install 'focalcli[exr]'``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from focalcli.data.base import pick, random_crop_flip
from focalcli.errors import InputError
from focalcli.io.depth import valid_depth
from focalcli.io.exr import read_exr
from focalcli.io.images import read_image
from focalcli.io.stack import natural_key

__all__ = ["FOD500_FOCUS_M", "FOD500_TRAIN_SCENES", "FoD500Source"]

FOD500_FOCUS_M = (0.1, 0.15, 0.3, 0.7, 1.5)
FOD500_TRAIN_SCENES = 400  # scenes [0, 400) train, the rest test


class FoD500Source:
    """One split of a FoD500 folder.

    Args:
        folder: the folder holding ``*All.tif`` and ``*Dpt.exr``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        train_scenes: scenes before this index form the training split.

    Raises:
        InputError: no such folder, no files, or counts that do not pair up.
    """

    name = "fod500"

    def __init__(self, folder: str | os.PathLike, split: str = "train", train_scenes: int = FOD500_TRAIN_SCENES):
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder (expected a FoD500 folder of *All.tif and *Dpt.exr)")
        if split not in ("train", "test", "all"):
            raise InputError(f"FoD500 split must be train, test or all, got {split!r}")
        frames = sorted(folder.glob("*All.tif"), key=lambda p: natural_key(p.name))
        depths = sorted(folder.glob("*Dpt.exr"), key=lambda p: natural_key(p.name))
        n = len(FOD500_FOCUS_M)
        if not depths:
            raise InputError(f"{folder}: no *Dpt.exr files (expected a FoD500 folder)")
        if len(frames) != n * len(depths):
            raise InputError(f"{folder}: {len(frames)} *All.tif files for {len(depths)} scenes (expected {n} each)")
        scenes = [(tuple(frames[n * k : n * k + n]), depths[k]) for k in range(len(depths))]
        if split == "train":
            scenes = scenes[:train_scenes]
        elif split == "test":
            scenes = scenes[train_scenes:]
        if not scenes:
            raise InputError(f"{folder}: the {split} split is empty ({len(depths)} scenes in all)")
        self.folder, self.split, self.scenes = folder, split, scenes
        self._focus = torch.tensor(FOD500_FOCUS_M, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.scenes)

    def item(self, index: int) -> dict:
        frame_paths, depth_path = self.scenes[index]
        frames = torch.stack([torch.from_numpy(read_image(p)[0]).permute(2, 0, 1) for p in frame_paths])  # (5,3,H,W)
        d = torch.from_numpy(read_exr(depth_path))
        if tuple(d.shape) != tuple(frames.shape[2:]):
            raise InputError(f"{depth_path}: depth {tuple(d.shape)} differs from the frames' {tuple(frames.shape[2:])}")
        depth = torch.where(valid_depth(d), d, torch.zeros(()))[None]  # (1, H, W)
        return {"frames": frames, "focus_distances_m": self._focus.clone(), "depth": depth, "name": depth_path.stem}

    def draw(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None = None) -> dict:
        return random_crop_flip(self.item(pick(g, len(self))), size, g)
