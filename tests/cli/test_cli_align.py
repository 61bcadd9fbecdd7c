"""``focal align`` and ``focal predict --align``: outputs, contracts, failure paths."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.io.depth import read_depth
from focalcli.io.images import probe_image, read_image
from tests import synthetic
from tests.conftest import write_frames
from tests.synthetic_align import corner_error, misaligned_stack

runner = CliRunner()
CAMERA = {"focal_length_mm": 50.0, "f_number": 2.8}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def raw_stack(tmp_path):
    """A 5-frame 240x320 misaligned stack with focus distances and a camera, plus the true transforms."""
    frames, truths, ref = misaligned_stack(n=5, h=240, w=320, seed=11)
    focus = [0.5, 0.6, 0.7, 0.8, 0.9]
    return write_frames(tmp_path / "raw", frames, focus=np.array(focus), camera=CAMERA), truths, ref


def test_align_writes_frames_stack_json_and_transforms(raw_stack, tmp_path):
    folder, truths, ref = raw_stack
    out = tmp_path / "aligned"
    r = run("align", folder, "-o", out, "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    names = [f"frame_{i:02d}.png" for i in range(5)]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "stack.json", "transforms.json"])
    meta = json.loads((out / "stack.json").read_text())
    assert meta["frames"] == names and meta["focus_distances_m"] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert meta["camera"] == CAMERA
    doc = json.loads((out / "transforms.json").read_text())
    assert doc["reference"] == ref == 2
    assert [f["name"] for f in doc["frames"]] == names
    for f, truth in zip(doc["frames"], truths, strict=True):
        assert {"name", "matrix", "scale", "score"} <= set(f)
        assert corner_error(np.array(f["matrix"]), truth, 240, 320) < 0.2
    x, y, w, h = summary["crop"]
    assert 280 < w < 320 and 200 < h < 240
    info = probe_image(out / names[0])
    assert (info.width, info.height, info.bit_depth) == (w, h, 8)


def test_aligned_frames_line_up(raw_stack, tmp_path):
    folder, _, _ = raw_stack
    out = tmp_path / "aligned"
    assert run("align", folder, "-o", out).exit_code == 0
    ref, _ = read_image(out / "frame_02.png")
    before, after = read_image(folder / "frame_04.png")[0], read_image(out / "frame_04.png")[0]
    x, y, w, h = json.loads((out / "transforms.json").read_text())["crop"]
    raw_ref = read_image(folder / "frame_02.png")[0][y:y + h, x:x + w]
    np.testing.assert_allclose(ref, raw_ref, atol=1 / 255)  # the reference is only cropped
    err_after = np.abs(cv2.GaussianBlur(after - ref, (0, 0), 2)).mean()
    err_before = np.abs(cv2.GaussianBlur(before[y:y + h, x:x + w] - ref, (0, 0), 2)).mean()
    assert err_after < 0.3 * err_before


def test_no_crop_keeps_size_and_16_bit(tmp_path):
    frames, _, _ = misaligned_stack(n=3, h=120, w=160, seed=12)
    folder = write_frames(tmp_path / "raw16", frames, bit_depth=16)
    out = tmp_path / "aligned"
    r = run("align", folder, "-o", out, "--no-crop", "--model", "affine", "--reference", "0")
    assert r.exit_code == 0, r.stderr
    info = probe_image(out / "frame_00.png")
    assert (info.width, info.height, info.bit_depth) == (160, 120, 16)
    assert json.loads((out / "transforms.json").read_text())["reference"] == 0


def test_bad_frame_fails_with_its_name_and_writes_nothing(tmp_path):
    frames, _, _ = misaligned_stack(n=4, h=120, w=160, seed=13)
    frames[3] = misaligned_stack(n=1, h=120, w=160, seed=77)[0][0]  # another scene
    folder = write_frames(tmp_path / "raw", frames)
    out = tmp_path / "aligned"
    r = run("align", folder, "-o", out)
    assert r.exit_code == 3
    assert "frame_03.png" in r.stderr and "--skip-bad" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["raw"]  # no temp folder left either
    r = run("align", folder, "-o", out, "--skip-bad", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["skipped"] == ["frame_03.png"]
    assert not (out / "frame_03.png").exists()
    assert json.loads((out / "stack.json").read_text())["frames"] == [f"frame_0{i}.png" for i in range(3)]


def test_output_checks(raw_stack, tmp_path):
    folder, _, _ = raw_stack
    out = tmp_path / "aligned"
    out.mkdir()
    (out / "old.txt").write_text("x")
    r = run("align", folder, "-o", out)
    assert r.exit_code == 6 and "--overwrite" in r.stderr
    assert run("align", folder, "-o", out, "--overwrite").exit_code == 0
    assert not (out / "old.txt").exists() and (out / "transforms.json").is_file()
    r = run("align", folder, "-o", folder, "--overwrite")
    assert r.exit_code == 6 and "input" in r.stderr
    assert (folder / "stack.json").is_file()


def test_bad_options(raw_stack, tmp_path):
    folder, _, _ = raw_stack
    assert run("align", folder, "-o", tmp_path / "a", "--model", "rigid").exit_code == 2
    assert run("align", folder, "-o", tmp_path / "a", "--reference", "first").exit_code == 2
    r = run("align", folder, "-o", tmp_path / "a", "--reference", "9")
    assert r.exit_code == 3 and "out of range" in r.stderr


def test_predict_align(tmp_path):
    frames, depth, focus = synthetic.slanted_plane(h=120, w=160)
    n = len(frames)
    moved = []
    for k, f in enumerate(frames):  # breathing +-3 % and a 2-3 px shake
        s, dx, dy = 1 + 0.006 * (k - n // 2), 2.0 * (-1) ** k, 1.5 * (-1) ** (k // 2)
        m = np.array([[s, 0, (1 - s) * 79.5 + dx], [0, s, (1 - s) * 59.5 + dy]], np.float32)
        moved.append(cv2.warpAffine(f, m, (160, 120), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT))
    folder = write_frames(tmp_path / "raw", np.stack(moved), focus=focus)
    inner = (slice(12, -12), slice(12, -12))
    errors = {}
    for flags in (["--align"], ["--align", "off"], []):  # a bare --align means on; the default is auto
        out = tmp_path / f"depth{'-'.join(flags)}.npy"
        # a small window and no filling: the per-pixel estimate, which misalignment hurts most
        r = run("predict", folder, "-o", out, "--window", "7", "--smooth", "0", *flags)
        assert r.exit_code == 0, r.stderr
        d = read_depth(out)
        assert d.shape == depth.shape
        errors[" ".join(flags)] = float(np.mean(np.abs(d[inner] - depth[inner]) / depth[inner]))
    assert json.loads((tmp_path / "depth--align.json").read_text())["options"]["align"] == "on"
    auto = json.loads((tmp_path / "depth.json").read_text())["align"]
    assert auto["mode"] == "auto" and auto["applied"] and auto["check"]["misalignment_px"] > 1
    assert errors["--align"] < 0.8 * errors["--align off"]
    assert errors[""] == errors["--align"]  # auto aligned exactly as on does


def test_align_keeps_sub_folders_so_equal_names_do_not_collide(raw_stack, tmp_path):
    folder, _, _ = raw_stack
    nested = tmp_path / "nested"
    names = sorted(p.name for p in folder.glob("*.png"))[:3]
    for sub, name in zip(("a", "b", "c"), names, strict=True):
        (nested / sub).mkdir(parents=True)
        (nested / sub / "x.png").write_bytes((folder / name).read_bytes())
    (nested / "stack.json").write_text(json.dumps({"frames": ["a/x.png", "b/x.png", "c/x.png"]}))
    r = run("align", nested, "-o", tmp_path / "out", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == 3
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("x.png")) == ["a/x.png", "b/x.png", "c/x.png"]
    assert json.loads((out / "stack.json").read_text())["frames"] == ["a/x.png", "b/x.png", "c/x.png"]
    assert run("info", out).exit_code == 0
