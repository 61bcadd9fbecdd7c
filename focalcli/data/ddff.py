"""DDFF-12 (Hazirbas et al., 2018) as published in one ``.h5`` file.

Layout: ``stack_train``/``disp_train`` and ``stack_val``/``disp_val`` (the DFV re-split file uses the same keys).
Stacks are ``[S, 10, H, W, 3]`` uint8, frame 0 focused nearest; disparities are ``[S, H, W]`` (or ``[S, H, W, 1]``)
float with ``depth = 0.14124 / disparity`` metres and 0 = invalid. The 10 focus planes are uniform in inverse depth
from 0.5 m to 7 m. h5py is an optional dependency (``pip install 'focalcli[h5]'``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from focalcli.data.base import pick, random_crop_flip
from focalcli.errors import InputError

__all__ = ["DDFF_BASELINE_FOCAL", "DDFFSource", "ddff_focus_distances"]

DDFF_BASELINE_FOCAL = 0.14124  # depth (m) = this / disparity (px)
DDFF_NEAR_M, DDFF_FAR_M, DDFF_PLANES = 0.5, 7.0, 10


def ddff_focus_distances() -> torch.Tensor:
    """The 10 DDFF-12 focus distances in metres, near to far (uniform in diopters from 0.5 m to 7 m)."""
    return 1.0 / torch.linspace(1.0 / DDFF_NEAR_M, 1.0 / DDFF_FAR_M, DDFF_PLANES, dtype=torch.float64)


class DDFFSource:
    """One split of a DDFF-12 ``.h5`` file. The file is opened lazily, once per process (loader workers each open it).

    Args:
        path: the ``.h5`` file.
        split: ``"train"`` or ``"val"``.

    Raises:
        InputError: h5py missing, the file unreadable, or the split's keys absent or inconsistent.
    """

    name = "ddff"

    def __init__(self, path: str | os.PathLike, split: str = "train"):
        self.path = Path(path)
        if split not in ("train", "val"):
            raise InputError(f"DDFF-12 split must be train or val, got {split!r}")
        self.split = split
        self._file, self._pid = None, None
        stack, disp = self._arrays()
        if stack.ndim != 5 or stack.shape[1] != DDFF_PLANES or stack.shape[4] != 3:
            raise InputError(f"{self.path}: stack_{split} has shape {stack.shape}, expected [S, 10, H, W, 3]")
        if disp.shape[0] != stack.shape[0] or tuple(disp.shape[1:3]) != tuple(stack.shape[2:4]):
            raise InputError(f"{self.path}: disp_{split} {disp.shape} does not match stack_{split} {stack.shape}")
        self._len = int(stack.shape[0])
        self._focus = ddff_focus_distances().float()

    def _arrays(self):
        if self._file is None or self._pid != os.getpid():
            try:
                import h5py
            except ImportError as e:
                raise InputError(f"{self.path}: reading DDFF-12 .h5 files needs h5py "
                                 "(pip install 'focalcli[h5]')") from e
            if not self.path.is_file():
                raise InputError(f"{self.path}: no such file")
            try:
                self._file = h5py.File(self.path, "r")
            except OSError as e:
                raise InputError(f"{self.path}: not a readable HDF5 file ({e})") from e
            self._pid = os.getpid()
        keys = (f"stack_{self.split}", f"disp_{self.split}")
        missing = [k for k in keys if k not in self._file]
        if missing:
            raise InputError(f"{self.path}: no {', '.join(missing)} (found {', '.join(sorted(self._file))})")
        import h5py

        arrays = self._file[keys[0]], self._file[keys[1]]
        for key, a in zip(keys, arrays, strict=True):
            if not isinstance(a, h5py.Dataset):
                raise InputError(f"{self.path}: {key} is an HDF5 {type(a).__name__.lower()}, expected a dataset")
            if a.dtype.kind not in "uif":
                raise InputError(f"{self.path}: {key} holds {a.dtype}, expected numbers")
        return arrays

    def __getstate__(self):  # h5py handles do not pickle; workers reopen the file
        return {**self.__dict__, "_file": None, "_pid": None}

    def __len__(self) -> int:
        return self._len

    def item(self, index: int) -> dict:
        stack, disp = self._arrays()
        try:
            frames_np, disp_np = stack[index], disp[index]
        except (OSError, ValueError) as e:  # a damaged file: h5py only notices when the chunk is read
            raise InputError(f"{self.path}: cannot read stack {index} of {self.split} ({e})") from e
        frames = torch.from_numpy(frames_np).permute(0, 3, 1, 2).float() / 255.0  # (10, 3, H, W)
        d = torch.from_numpy(disp_np).float()
        d = d[..., 0] if d.dim() == 3 else d  # (H, W)
        depth = torch.where(d > 0, DDFF_BASELINE_FOCAL / d.clamp(min=1e-12), torch.zeros(()))[None]  # (1, H, W)
        return {"frames": frames, "focus_distances_m": self._focus.clone(), "depth": depth,
                "name": f"{self.split}_{index:04d}"}

    def draw(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None = None) -> dict:
        return random_crop_flip(self.item(pick(g, self._len)), size, g)
