"""Stack folders with ground truth, laid out as ``focal synth`` writes them: ``DIR/NAME/stack/`` (a stack folder
with ``stack.json`` giving the focus distances) and ``DIR/NAME/depth.npy`` (float32 metres, 0 = invalid).

A training draw of ``n`` frames from a longer stack picks its random sub-schedule first
(``data.base.subset_indices``) and decodes only those frames."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from focalcli.data.base import pick, random_crop_flip, subset_indices
from focalcli.errors import InputError
from focalcli.io.depth import read_depth
from focalcli.io.stack import StackFolder, natural_key, read_stack, scan_stack

__all__ = ["StackFolderSource"]


class StackFolderSource:
    """Every ``NAME`` under ``folder`` that has both ``stack/`` and ``depth.npy``.

    Raises:
        InputError: no such folder or no stack in it; on read, a stack without focus distances or whose depth
            size differs from its frames.
    """

    name = "stacks"

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder")
        self.folder = folder
        self.entries = sorted((p for p in folder.iterdir() if (p / "stack").is_dir() and (p / "depth.npy").is_file()),
                              key=lambda p: natural_key(p.name))
        if not self.entries:
            raise InputError(f"{folder}: no NAME/stack/ + NAME/depth.npy pairs (the layout focal synth writes)")
        self._scans: dict[Path, StackFolder] = {}  # scanned once per process

    def __len__(self) -> int:
        return len(self.entries)

    def item(self, index: int) -> dict:
        entry = self.entries[index]
        stack = read_stack(entry / "stack")
        if stack.focus_distances_m is None:
            raise InputError(f"{entry / 'stack'}: no focus distances in stack.json (needed for training and eval)")
        depth = torch.from_numpy(read_depth(entry / "depth.npy"))[None]  # (1, H, W)
        if tuple(depth.shape[1:]) != stack.size:
            raise InputError(f"{entry / 'depth.npy'}: size {tuple(depth.shape[1:])} differs from the frames' "
                             f"{stack.size}")
        return {"frames": stack.frames, "focus_distances_m": stack.focus_distances_m.float(), "depth": depth,
                "name": entry.name, "camera": stack.camera}

    def _scan(self, index: int) -> StackFolder:
        entry = self.entries[index]
        if entry not in self._scans:
            sf = scan_stack(entry / "stack")
            if sf.focus_distances_m is None:
                raise InputError(f"{entry / 'stack'}: no focus distances in stack.json (needed for training)")
            self._scans[entry] = sf
        return self._scans[entry]

    def draw(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None = None) -> dict:
        """A random crop of a random stack; with ``n_frames``, a random sub-schedule of that many frames (only
        those are decoded)."""
        import numpy as np

        index = pick(g, len(self))
        sf = self._scan(index)
        keep = subset_indices(len(sf), n_frames or len(sf), g)
        frames = []
        for i in keep:
            img = sf.frame(i)  # (H, W, 3) float32 in [0, 1]
            frames.append(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1))
        depth = torch.from_numpy(read_depth(self.entries[index] / "depth.npy"))[None]  # (1, H, W)
        if tuple(depth.shape[1:]) != (sf.info.height, sf.info.width):
            raise InputError(f"{self.entries[index] / 'depth.npy'}: size {tuple(depth.shape[1:])} differs from the "
                             f"frames' {(sf.info.height, sf.info.width)}")
        fd = torch.tensor([sf.focus_distances_m[i] for i in keep], dtype=torch.float32)
        return random_crop_flip({"frames": torch.stack(frames), "focus_distances_m": fd, "depth": depth}, size, g)
