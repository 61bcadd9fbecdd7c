import json

import numpy as np
import pytest
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.io.atomic import PARTIAL_MARKER
from focalcli.io.images import write_image
from focalcli.io.stack import read_stack

runner = CliRunner()
H, W = 24, 32


@pytest.fixture
def rgbd(tmp_path):
    """Two tiny scenes in the generic rgb/ + depth/ layout (npy metres)."""
    root = tmp_path / "rgbd"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    for name in ("one", "two"):
        write_image(root / "rgb" / f"{name}.png", rng.random((H, W, 3)).astype(np.float32))
        d = np.full((H, W), 2.5, np.float32)
        d[:, : W // 2] = 0.8
        d[0, 0] = 0.0  # a hole
        np.save(root / "depth" / f"{name}.npy", d)
    return root


def _run(*args):
    return runner.invoke(app, ["synth", *map(str, args)])


def test_synth_writes_the_contract_layout(rgbd, tmp_path):
    out = tmp_path / "out"
    r = _run("--rgbd", rgbd, "-o", out, "--frames", 4, "--workers", 1, "--procedural", 1,
             "--procedural-size", "40x30", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["scenes"] == ["one", "two", "procedural__00000"]
    stack = read_stack(out / "one" / "stack")
    assert len(stack) == 4 and stack.frames.shape[-2:] == (H, W)
    meta = json.loads((out / "one" / "stack" / "stack.json").read_text())
    assert meta["camera"] == {"focal_length_mm": 50.0, "f_number": 2.0, "pixel_pitch_um": 1125.0}  # 36 mm / 32 px
    assert meta["focus_distances_m"] == sorted(meta["focus_distances_m"])
    depth = np.load(out / "one" / "depth.npy")
    assert depth.dtype == np.float32 and depth.shape == (H, W)
    assert depth[0, 0] == 0 and depth[5, 5] == pytest.approx(0.8)
    assert (out / "one" / "aif.png").is_file()
    assert np.load(out / "procedural__00000" / "depth.npy").shape == (30, 40)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["count"] == 3
    entry = manifest["scenes"][0]
    assert entry["params"]["focus_distances_m"] == meta["focus_distances_m"]
    assert all((out / f).is_file() for s in manifest["scenes"] for f in s["files"])
    assert not list(out.glob(".*"))  # no temporary folders left


def test_synth_is_deterministic_and_resumes(rgbd, tmp_path):
    args = ["--rgbd", rgbd, "--frames", 3, "--read-noise", 0.01, "--workers", 1]
    assert _run(*args, "-o", tmp_path / "a").exit_code == 0
    assert _run(*args, "-o", tmp_path / "b", "--seed", 0).exit_code == 0
    a = read_stack(tmp_path / "a" / "two" / "stack").frames
    assert np.array_equal(a.numpy(), read_stack(tmp_path / "b" / "two" / "stack").frames.numpy())
    assert _run(*args, "-o", tmp_path / "c", "--seed", 1).exit_code == 0
    assert not np.array_equal(a.numpy(), read_stack(tmp_path / "c" / "two" / "stack").frames.numpy())
    # resume: a complete scene is skipped, a partial one (missing file, stale temp folder) is redone
    out = tmp_path / "a"
    kept = (out / "one" / "scene.json").stat().st_mtime_ns
    (out / "two" / "depth.npy").unlink()
    (out / ".one.x1y2z3.partial").mkdir()
    (out / ".one.x1y2z3.partial" / PARTIAL_MARKER).touch()  # focal's own, left by a killed run
    (out / ".one.partial").mkdir()  # not focal's: never deleted
    r = _run(*args, "-o", out)
    assert r.exit_code == 0, r.output
    assert (out / "one" / "scene.json").stat().st_mtime_ns == kept
    assert (out / "two" / "depth.npy").is_file() and not (out / ".one.x1y2z3.partial").exists()
    assert (out / ".one.partial").is_dir()
    assert np.array_equal(a.numpy(), read_stack(out / "two" / "stack").frames.numpy())
    # other options into the same folder: refused without --overwrite
    r = _run("--rgbd", rgbd, "--frames", 5, "--workers", 1, "-o", out)
    assert r.exit_code == 6 and "other options" in r.output
    assert _run("--rgbd", rgbd, "--frames", 5, "--workers", 1, "-o", out, "--overwrite").exit_code == 0
    assert len(read_stack(out / "one" / "stack")) == 5


@pytest.mark.slow  # spawns worker processes (~5 s of imports)
def test_synth_parallel_matches_serial(rgbd, tmp_path):
    assert _run("--rgbd", rgbd, "-o", tmp_path / "s", "--workers", 1, "--frames", 2).exit_code == 0
    r = _run("--rgbd", rgbd, "-o", tmp_path / "p", "--workers", 2, "--frames", 2)
    assert r.exit_code == 0, r.output
    for name in ("one", "two"):
        s = read_stack(tmp_path / "s" / name / "stack").frames
        p = read_stack(tmp_path / "p" / name / "stack").frames
        assert np.array_equal(s.numpy(), p.numpy())


def test_synth_bad_input(rgbd, tmp_path):
    out = tmp_path / "out"
    r = _run("--rgbd", tmp_path / "missing", "-o", out)
    assert r.exit_code == 3 and "no such folder" in r.output
    r = _run("--rgbd", rgbd / "rgb", "-o", out)
    assert r.exit_code == 3 and "no RGB-D scenes" in r.output
    np.save(rgbd / "depth" / "two.npy", np.zeros((H, W + 2), np.float32))
    r = _run("--rgbd", rgbd, "-o", out, "--workers", 1)
    assert r.exit_code == 3 and "two: depth is 34x24 but rgb is 32x24" in r.output
    assert not (out / "two").exists() and not list(out.glob(".*"))
    np.save(rgbd / "depth" / "two.npy", np.zeros((H, W), np.float32))
    r = _run("--rgbd", rgbd, "-o", out, "--workers", 1)
    assert r.exit_code == 3 and "two: depth map has no valid values" in r.output
    assert not (out / "two").exists() and not list(out.glob(".*"))
    (rgbd / "rgb" / "two.png").write_bytes(b"not a png")
    r = _run("--rgbd", rgbd, "-o", out, "--workers", 1)
    assert r.exit_code == 3 and "two.png: not a readable image" in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (out / "two").exists() and not list(out.glob(".*"))


def test_synth_bad_options(rgbd, tmp_path):
    out = tmp_path / "out"
    r = _run("--rgbd", rgbd, "-o", out, "--schedule", "spiral")
    assert r.exit_code == 4 and "unknown schedule" in r.output
    r = _run("--rgbd", rgbd, "-o", out, "--psf", "box")
    assert r.exit_code == 4 and "unknown PSF" in r.output
    r = _run("-o", out)
    assert r.exit_code == 4 and "nothing to render" in r.output
    r = _run("--rgbd", rgbd, "-o", out, "--procedural-size", "big")
    assert r.exit_code == 2
    (tmp_path / "file").write_text("x")
    r = _run("--rgbd", rgbd, "-o", tmp_path / "file")
    assert r.exit_code == 6 and "not a folder" in r.output
    r = _run("--rgbd", rgbd, "-o", tmp_path / "file" / "out")
    assert r.exit_code == 6 and "is a file" in r.output


def test_synth_creates_missing_parent_folders_and_removes_them_on_failure(rgbd, tmp_path):
    r = _run("--rgbd", rgbd, "-o", tmp_path / "runs" / "deep" / "out", "--frames", 3, "--workers", 1)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / "deep" / "out" / "manifest.json").is_file()
    (rgbd / "rgb" / "one.png").write_bytes(b"broken")  # the first scene fails: nothing rendered, nothing left
    r = _run("--rgbd", rgbd, "-o", tmp_path / "other" / "out", "--frames", 3, "--workers", 1)
    assert r.exit_code == 3 and not (tmp_path / "other").exists(), r.output
