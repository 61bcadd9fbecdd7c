"""Shared fixtures: tiny stack folders on disk, and the optional ../shared/data folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from focalcli.io.images import write_image
from tests import synthetic

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; tests using it skip cleanly when it is absent (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def write_frames(folder: Path, frames: np.ndarray, *, focus: np.ndarray | None = None, suffix: str = ".png",
                 bit_depth: int = 8, camera: dict | None = None, names: list[str] | None = None) -> Path:
    """Write (N, H, W, 3) float frames as a stack folder; a stack.json when focus distances or a camera are given."""
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"frame_{i:02d}{suffix}" for i in range(len(frames))]
    for name, f in zip(names, frames, strict=True):
        write_image(folder / name, f, bit_depth=bit_depth)
    if focus is not None or camera is not None:
        meta: dict = {"frames": names}
        if focus is not None:
            meta["focus_distances_m"] = [float(x) for x in focus]
        if camera is not None:
            meta["camera"] = camera
        (folder / "stack.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def plane_stack(tmp_path) -> tuple[Path, np.ndarray]:
    """A 10-frame slanted-plane stack folder with focus distances, and its true depth (metres)."""
    frames, depth, focus = synthetic.slanted_plane()
    return write_frames(tmp_path / "plane", frames, focus=focus, camera={"focal_length_mm": 50, "f_number": 2}), depth


@pytest.fixture
def tiny_stack(tmp_path) -> Path:
    """A 3-frame 40x32 stack folder without focus distances."""
    frames, _, _ = synthetic.step_planes(h=32, w=40, n=3)
    return write_frames(tmp_path / "tiny", frames)


@pytest.fixture(scope="module")
def micro_weights(tmp_path_factory) -> Path:
    """A tiny untrained FocDepthFormer exported as a safetensors model file."""
    from focalcli.weights import export_model
    from tests.models_common import micro

    path = tmp_path_factory.mktemp("w") / "micro.safetensors"
    export_model(micro(True), path, trained_on="nothing (test)")
    return path
