"""The assets and set-up steps of the bad-input table (``test_bad_inputs.py``).

Every asset is built once per session in a template folder; a case copies what it needs into its own fresh working
folder, breaks it, and runs one command there. Paths in commands are relative to that folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

Setup = Callable[[Path], None]

TINY = {"image_size": 64, "width": 32, "depth": 4, "hooks": [1, 2, 3, 4], "heads": 2, "lstm_hidden": 32,
        "lstm_layers": 1, "decoder_channels": [8, 16, 16, 32], "decoder_features": 16, "stem_branch": 8,
        "stem_mid": 16, "stem_out": 8, "key_channels": 8, "focus_distance_aware": True}


def build_template(root: Path) -> Path:
    """Write every good asset the cases start from into ``root``."""
    import torch

    from focalcli.io.images import write_image
    from focalcli.models import ModelConfig, build_model
    from focalcli.train.checkpoint import save_checkpoint
    from focalcli.train.config import TrainConfig
    from focalcli.weights import export_model
    from tests import synthetic
    from tests.conftest import write_frames
    from tests.datasets_tiny import write_ddff_h5, write_stacks

    frames, _, focus = synthetic.step_planes(h=32, w=40, n=3)
    write_frames(root / "stack", frames, focus=focus, camera={"focal_length_mm": 50, "f_number": 2})
    write_frames(root / "jpgstack", frames, suffix=".jpg")
    for name in ("s1", "s2"):
        write_frames(root / "batch" / name, frames)
    rgbd = root / "rgbd"
    (rgbd / "rgb").mkdir(parents=True)
    (rgbd / "depth").mkdir()
    write_image(rgbd / "rgb" / "a.png", frames[0][:24, :32])
    np.save(rgbd / "depth" / "a.npy", np.full((24, 32), 1.5, np.float32))
    write_stacks(root / "data", count=2, h=20, w=24)
    write_ddff_h5(root / "ddff.h5")
    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY))
    export_model(model, root / "model.safetensors", trained_on="bad-input table")
    options = {k: v for k, v in TINY.items() if k != "focus_distance_aware"}
    cfg = TrainConfig(data=(f"stacks:{root / 'data'}",), model="focdepthformer-tiny", model_options=options,
                      steps=2, batch_size=1, crop=16, workers=0, device="cpu", val_every=0)
    optimizer = torch.optim.AdamW(model.parameters())
    (root / "run").mkdir()
    save_checkpoint(root / "run" / "last.pt", model=model, optimizer=optimizer, step=1, config=cfg.to_dict(), seed=0)
    (root / "run" / "config.json").write_text(json.dumps(cfg.to_dict()))
    (root / "run" / "log.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
    (root / "ckpt.pt").write_bytes((root / "run" / "last.pt").read_bytes())
    return root


class Template:
    """Set-up steps bound to the session's template folder."""

    def __init__(self, root: Path):
        self.root = root

    def copy(self, name: str, to: str | None = None) -> Setup:
        def setup(w: Path) -> None:
            src, dst = self.root / name, w / (to or name)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dst) if src.is_dir() else shutil.copy2(src, dst)

        return setup

    def model_with(self, to: str, *, config: dict | None = None, raw_config: str | None = None,
                   drop_meta: str | None = None, drop_tensor: bool = False) -> Setup:
        """A copy of the template model whose metadata or tensors are changed."""

        def setup(w: Path) -> None:
            from safetensors import safe_open
            from safetensors.torch import load_file, save_file

            src = self.root / "model.safetensors"
            with safe_open(str(src), framework="pt") as f:
                meta = dict(f.metadata())
            tensors = load_file(str(src))
            if config is not None:
                meta["config"] = json.dumps({**json.loads(meta["config"]), **config})
            if raw_config is not None:
                meta["config"] = raw_config
            if drop_meta:
                meta.pop(drop_meta)
            if drop_tensor:
                tensors.pop(sorted(tensors)[0])
            save_file(tensors, str(w / to), metadata=meta)

        return setup

    def checkpoint_with(self, to: str, change: Callable[[dict], object], *, replace: bool = False) -> Setup:
        """A copy of the template checkpoint with ``change`` applied to its dict (``replace``: saved instead)."""

        def setup(w: Path) -> None:
            import torch

            state = torch.load(self.root / "ckpt.pt", weights_only=True)
            out = change(state)
            (w / to).parent.mkdir(parents=True, exist_ok=True)
            torch.save(out if replace else state, w / to)

        return setup


def write(path: str, content: bytes | str) -> Setup:
    def setup(w: Path) -> None:
        p = w / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


def write_json(path: str, obj: object) -> Setup:
    return write(path, json.dumps(obj))


def mkdir(path: str) -> Setup:
    def setup(w: Path) -> None:
        (w / path).mkdir(parents=True, exist_ok=True)

    return setup


def unwritable(path: str) -> Setup:
    """A folder nobody but root may write (cases using it run unprivileged)."""

    def setup(w: Path) -> None:
        (w / path).mkdir(parents=True, exist_ok=True)
        os.chmod(w / path, 0o555)

    return setup


def remove(path: str) -> Setup:
    def setup(w: Path) -> None:
        p = w / path
        shutil.rmtree(p) if p.is_dir() else p.unlink()

    return setup


def edit_json(path: str, change: Callable[[dict], None]) -> Setup:
    def setup(w: Path) -> None:
        p = w / path
        obj = json.loads(p.read_text())
        change(obj)
        p.write_text(json.dumps(obj))

    return setup


def image(path: str, h: int, w: int, suffix_bits: int = 8) -> Setup:
    def setup(d: Path) -> None:
        from focalcli.io.images import write_image

        (d / path).parent.mkdir(parents=True, exist_ok=True)
        write_image(d / path, np.random.default_rng(0).random((h, w, 3)).astype(np.float32), bit_depth=suffix_bits)

    return setup


def png_bomb(path: str, width: int = 100_000, height: int = 100_000) -> Setup:
    """A valid PNG signature and IHDR declaring a gigantic image, with one tiny IDAT (a forged header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    return write(path, data)


def damaged_jpeg(path: str) -> Setup:
    """A JPEG whose entropy-coded data is damaged in the middle (header and end marker intact)."""

    def setup(w: Path) -> None:
        p = w / path
        b = bytearray(p.read_bytes())
        start = b.index(b"\xff\xda") + 16  # past the start-of-scan header: the entropy-coded pixels
        mid = (start + len(b) - 2) // 2
        for i in range(mid, min(mid + 40, len(b) - 2)):
            b[i] = 0xFF if i % 3 == 0 else b[i] ^ 0x5A
        p.write_bytes(bytes(b))

    return setup


class _Evil:
    """Unpickling this would create a file named ``pwned``; focal must refuse it without running it."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def evil_pickle(path: str) -> Setup:
    return write(path, pickle.dumps({"format": "focal-train-checkpoint/1", "model": _Evil()}))


def hdf5_group(path: str, key: str) -> Setup:
    """A DDFF-12-style .h5 whose ``key`` is a group, not a dataset."""

    def setup(w: Path) -> None:
        import h5py

        with h5py.File(w / path, "w") as f:
            f.create_group(key)
            f["disp_val" if key == "stack_val" else "stack_val"] = np.zeros((1, 10, 8, 8, 3), np.uint8)

    return setup


def toml(path: str, text: str) -> Setup:
    return write(path, text)
