import json

import numpy as np
import pytest
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.io.depth import read_depth
from tests.bad_stacks import BAD, _bad_stack
from tests.cli.asserts import assert_one_line_error

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("suffix", [".npy", ".png", ".tiff"])
def test_predict_metric_depth(plane_stack, tmp_path, suffix):
    folder, gt = plane_stack
    out = tmp_path / f"depth{suffix}"
    r = run("predict", folder, "-o", out, "--aif", tmp_path / "aif.png", "--confidence", tmp_path / "c.npy",
            "--preview", "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["units"] == "m" and summary["outputs"]["depth"] == str(out)
    d = read_depth(out)
    assert d.shape == gt.shape
    inner = (slice(8, -8), slice(8, -8))
    assert np.mean(np.abs(d[inner] - gt[inner]) / gt[inner]) < 0.05
    assert (tmp_path / "aif.png").is_file() and (tmp_path / "depth_preview.png").is_file()
    assert np.load(tmp_path / "c.npy").shape == gt.shape
    assert json.loads((tmp_path / "depth.json").read_text())["units"] == "m"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_predict_unknown_distances_says_so(tiny_stack, tmp_path):
    r = run("predict", tiny_stack, "-o", tmp_path / "d.npy")
    assert r.exit_code == 0, r.stderr
    assert "frame-index units" in r.stderr.replace("\n", " ")
    d = np.load(tmp_path / "d.npy")
    assert d.dtype == np.float32 and d.shape == (32, 40) and d.min() >= 1 and d.max() <= 3
    assert json.loads((tmp_path / "d.json").read_text())["units"] == "frame_index"


def test_predict_batch(tiny_stack, plane_stack, tmp_path):
    root = tiny_stack.parent  # holds tiny/ and plane/
    r = run("predict", root, "-o", tmp_path / "out", "--aif", "aif.jpg", "--format", "npy", "--json")
    assert r.exit_code == 0, r.stderr
    assert len(json.loads(r.stdout)) == 2
    for name in ("tiny", "plane"):
        assert (tmp_path / "out" / name / "depth.npy").is_file()
        assert (tmp_path / "out" / name / "aif.jpg").is_file()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*") if p.is_file()}
    again = run("predict", root, "-o", tmp_path / "out", "--format", "npy")  # complete stacks are skipped
    assert again.exit_code == 0 and again.stderr.count("skipped") == 2, again.stderr
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*") if p.is_file()} == before
    other = run("predict", root, "-o", tmp_path / "out", "--format", "npy", "--measure", "tenengrad")
    assert_one_line_error(other, 6, "not the complete result of this command")


@pytest.mark.parametrize("kind", BAD)
def test_predict_bad_input(tmp_path, kind):
    folder, fragment = _bad_stack(tmp_path, kind)
    out = tmp_path / "depth.png"
    r = run("predict", folder, "-o", out)
    assert_one_line_error(r, 3, fragment)
    assert not out.exists()


def test_predict_output_errors(tiny_stack, tmp_path):
    (tmp_path / "f").write_text("a file")
    assert_one_line_error(run("predict", tiny_stack, "-o", tmp_path / "f" / "d.png"), 6, "is a file")
    assert_one_line_error(run("predict", tiny_stack, "-o", tmp_path / "d.jpg"), 6, "unknown output extension")
    assert_one_line_error(run("predict", tiny_stack, "-o", tmp_path / "d.png", "--aif", tmp_path / "a.xyz"), 6,
                          "unknown output extension")
    (tmp_path / "d.png").write_bytes(b"old")
    assert_one_line_error(run("predict", tiny_stack, "-o", tmp_path / "d.png"), 6, "exists already")
    assert (tmp_path / "d.png").read_bytes() == b"old"
    r = run("predict", tiny_stack, "-o", tmp_path / "d.png", "--overwrite")
    assert r.exit_code == 0 and read_depth(tmp_path / "d.png").shape == (32, 40)


def test_predict_usage_errors_are_code_2(tiny_stack, tmp_path):
    assert run("predict", tiny_stack).exit_code == 2  # missing -o
    assert run("predict", tiny_stack, "-o", tmp_path / "d.png", "--method", "magic").exit_code == 2
    assert run("predict", tiny_stack, "-o", tmp_path / "d.png", "--measure", "magic").exit_code == 2


def test_version_and_help():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.startswith("focal ")
    assert run("--help").exit_code == 0


def test_predict_notes_a_scene_beyond_the_focus_range(tmp_path):
    from tests import synthetic
    from tests.conftest import write_frames

    focus_d = np.linspace(2.0, 0.4, 8)
    depth = np.full((96, 128), 1 / 1.2, np.float32)
    depth[:, 64:] = 1 / 0.3  # the right half lies beyond the far plane (2.5 m)
    frames = synthetic.render(synthetic.texture(96, 128, seed=5), depth, 1 / focus_d, gain=2.0)
    folder = write_frames(tmp_path / "beyond", frames, focus=1 / focus_d)
    r = run("predict", folder, "-o", tmp_path / "d.npy", "--json")
    assert r.exit_code == 0, r.stderr
    err = " ".join(r.stderr.split())
    assert "sharpest in the farthest frame (2.5 m)" in err and "extends farther than the focus range" in err
    assert "nearest frame" not in err
    assert json.loads(r.stdout)["resolved"]["at_end_planes"]["far"] > 0.25
    plane, _, focus = synthetic.slanted_plane()
    inside = write_frames(tmp_path / "inside", plane, focus=focus)
    r = run("predict", inside, "-o", tmp_path / "e.npy")
    assert r.exit_code == 0 and "focus range" not in r.stderr
