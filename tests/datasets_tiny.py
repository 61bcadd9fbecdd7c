"""Tiny on-disk datasets in the published layouts, written by the tests themselves (shared by several test files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from focalcli.io.depth import write_depth
from focalcli.io.images import write_image
from focalcli.io.stack import FocalStack, write_stack


def write_ddff_h5(path: Path, n_train: int = 2, n_val: int = 2, h: int = 12, w: int = 16, seed: int = 0) -> Path:
    """A DDFF-12-layout .h5: stack_* [S, 10, H, W, 3] uint8, disp_* [S, H, W] float32 (some zeros = invalid)."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for split, n in (("train", n_train), ("val", n_val)):
            f[f"stack_{split}"] = rng.integers(0, 256, size=(n, 10, h, w, 3), dtype=np.uint8)
            disp = rng.uniform(0.02, 0.28, size=(n, h, w)).astype(np.float32)
            disp[:, 0, :3] = 0  # invalid pixels
            f[f"disp_{split}"] = disp
    return path


def write_fod500(folder: Path, scenes: int = 3, h: int = 10, w: int = 12, seed: int = 0) -> Path:
    """A FoD500-layout folder: NNNNNN_0K All.tif (K = 0..4) and NNNNNN Dpt.exr per scene."""
    import cv2

    from focalcli.io.exr import write_exr

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(scenes):
        for k in range(5):
            cv2.imwrite(str(folder / f"{s:06d}_{k:02d}All.tif"), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        depth = rng.uniform(0.1, 2.0, size=(h, w)).astype(np.float32)
        write_exr(folder / f"{s:06d}Dpt.exr", depth)
    return folder


def write_stacks(folder: Path, count: int = 2, n: int = 3, h: int = 16, w: int = 20, seed: int = 0) -> Path:
    """A folder laid out as ``focal synth`` writes it: NAME/stack/ + NAME/depth.npy."""
    import torch

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        frames = torch.from_numpy(rng.uniform(0, 1, (n, 3, h, w)).astype(np.float32))
        stack = FocalStack(frames=frames, focus_distances_m=torch.linspace(0.5, 2.0, n))
        (folder / f"s{i}").mkdir()
        write_stack(stack, folder / f"s{i}" / "stack")
        depth = rng.uniform(0.5, 2.0, (h, w)).astype(np.float32)
        depth[0, 0] = 0
        write_depth(folder / f"s{i}" / "depth.npy", depth)
    return folder


def write_rgbd(root, count=4, h=40, w=48):
    rng = np.random.default_rng(0)
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for i in range(count):
        write_image(root / "rgb" / f"s{i}.png", rng.uniform(0, 1, (h, w, 3)).astype(np.float32))
        depth = rng.uniform(0.8, 3.0, (h, w)).astype(np.float32)
        depth[:2] = 0  # a hole
        np.save(root / "depth" / f"s{i}.npy", depth)
    return root
