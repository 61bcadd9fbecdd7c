"""Issue 14 for ``focal predict`` and ``focal fuse``: aligned by default, every stack found, outputs that say what
made them (sidecar, several depth files, point cloud, comparable previews)."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import focalcli
from focalcli.cli.app import app
from focalcli.io.depth import read_depth
from focalcli.io.images import read_image, write_image
from focalcli.io.pointcloud import read_ply
from tests import synthetic
from tests.cli.asserts import assert_one_line_error
from tests.conftest import write_frames
from tests.synthetic_align import breathing_stack

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def breathing_folder(tmp_path):
    """8 frames of a slanted plane (focus distances known) with 0.6 % focus breathing per frame, and its depth."""
    frames, depth, focus = breathing_stack(step=0.006)
    return write_frames(tmp_path / "breathing", frames, focus=focus), depth


# ------------------------------------------------------------------------------------------------ --align auto


def test_auto_leaves_an_aligned_stack_bit_identical(plane_stack, tmp_path):
    folder, _ = plane_stack
    for flags, name in (([], "auto"), (["--align", "off"], "off")):
        r = run("predict", folder, "-o", tmp_path / f"{name}.npy", "--confidence", tmp_path / f"{name}_c.npy",
                "--aif", tmp_path / f"{name}.png", *flags)
        assert r.exit_code == 0, r.stderr
    for suffix in (".npy", "_c.npy"):
        assert np.array_equal(np.load(tmp_path / f"auto{suffix}"), np.load(tmp_path / f"off{suffix}"))
    assert np.array_equal(read_image(tmp_path / "auto.png")[0], read_image(tmp_path / "off.png")[0])
    record = json.loads((tmp_path / "auto.json").read_text())["align"]
    assert record["mode"] == "auto" and record["applied"] is False and record["check"]["needed"] is False
    assert len(record["check"]["pairs"]) == 3 and "registration" not in record
    assert json.loads((tmp_path / "off.json").read_text())["align"] == {"mode": "off", "applied": False,
                                                                        "reason": "not aligned: --align off"}


def test_auto_aligns_a_breathing_stack_and_fills_uncovered_pixels(breathing_folder, tmp_path):
    folder, truth = breathing_folder
    errors = {}
    for flags, name in (([], "auto"), (["--align", "off"], "off"), (["--uncovered", "invalid"], "invalid")):
        r = run("predict", folder, "-o", tmp_path / f"{name}.npy", "--confidence", tmp_path / f"{name}_c.npy",
                "--json", *flags)
        assert r.exit_code == 0, r.stderr
        d = np.load(tmp_path / f"{name}.npy")
        inner = (slice(16, -16), slice(16, -16))
        errors[name] = float(np.mean(np.abs(d[inner] - truth[inner]) / truth[inner]))
    s = json.loads((tmp_path / "auto.json").read_text())
    record = s["align"]
    assert record["applied"] and record["check"]["breathing_px"] > 1 and "breathing" in record["reason"]
    assert len(record["registration"]["frames"]) == 8 and record["registration"]["reference"] == 3
    assert record["uncovered"] == "filled" and s["invalid"] == "0 = no estimate" and "uncovered" not in s["options"]
    d, conf = np.load(tmp_path / "invalid.npy"), np.load(tmp_path / "invalid_c.npy")
    invalid = d == 0
    # the frames magnified most cover the least: a ring at the border has no data from them, and with
    # --uncovered invalid no depth
    s = json.loads((tmp_path / "invalid.json").read_text())
    assert s["options"]["uncovered"] == "invalid" and s["align"]["uncovered"] == "invalid"
    assert invalid.sum() == s["align"]["uncovered_pixels"] > 0 and invalid[0].any() and invalid[:, -1].any()
    assert not invalid[20:-20, 20:-20].any() and (conf[invalid] == 0).all()
    # by default they get depth from the covered pixels around them (confidence 0: no evidence of their own)
    filled, conf = np.load(tmp_path / "auto.npy"), np.load(tmp_path / "auto_c.npy")
    assert np.isfinite(filled).all() and (filled > 0).all() and (conf[invalid] == 0).all()
    assert np.array_equal(filled[~invalid], d[~invalid])
    ring = np.mean(np.abs(filled[invalid] - truth[invalid]) / truth[invalid])
    assert ring < 0.1, ring  # a slanted plane: the fill continues it
    assert (np.load(tmp_path / "off.npy") > 0).all()  # without alignment every pixel has (wrong) depth
    assert errors["auto"] < 0.7 * errors["off"], errors


def test_auto_predicts_unaligned_when_registration_fails(breathing_folder, tmp_path, monkeypatch):
    import focalcli.align.stack as align_stack
    from focalcli.errors import InputError

    def fail(*args, **kwargs):
        raise InputError("1 frame(s) could not be registered: frame_07.png (ECC did not converge)")

    monkeypatch.setattr(align_stack, "register_lazily", fail)
    folder, _ = breathing_folder
    r = run("predict", folder, "-o", tmp_path / "d.npy")
    assert r.exit_code == 0, r.stderr
    record = json.loads((tmp_path / "d.json").read_text())["align"]
    assert not record["applied"] and "registration failed" in record["reason"] and record["check"]["needed"]
    assert_one_line_error(run("predict", folder, "-o", tmp_path / "e.npy", "--align", "on"), 3, "frame_07.png")


def test_fuse_aligns_by_default(tmp_path):
    frames, _, focus = breathing_stack(step=0.02)  # the end frames' corners 7 px off: ghosting without alignment
    folder = write_frames(tmp_path / "breathing", frames, focus=focus)
    s = 1.02 ** (3 - 4)  # the scene as the reference (middle) frame 3 shows it: magnified like it
    m = np.array([[s, 0, (1 - s) * 79.5], [0, s, (1 - s) * 59.5]], np.float32)
    sharp = cv2.warpAffine(synthetic.texture(120, 160), m, (160, 120), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    errors = {}
    for flags, name in (([], "auto"), (["--align", "off"], "off")):
        r = run("fuse", folder, "-o", tmp_path / f"{name}.png", "--json", *flags)
        assert r.exit_code == 0, r.stderr
        aif, _ = read_image(tmp_path / f"{name}.png")
        errors[name] = float(np.abs(aif - sharp)[16:-16, 16:-16].mean())
        if name == "auto":
            assert json.loads(r.stdout)["align"]["applied"]
            assert "aligned: focus breathing" in " ".join(r.stderr.split())
    assert errors["auto"] < 0.6 * errors["off"], errors


def test_a_bare_align_flag_still_means_on(plane_stack, tmp_path):
    folder, _ = plane_stack
    r = run("predict", folder, "--align", "-o", tmp_path / "d.npy")  # the flag of earlier versions, mid-line
    assert r.exit_code == 0, r.stderr
    record = json.loads((tmp_path / "d.json").read_text())["align"]
    assert record["mode"] == "on" and record["applied"] and "check" not in record


# ------------------------------------------------------------------------------------------------ the sidecar


def test_sidecar_records_version_resolved_options_and_alignment(plane_stack, tmp_path):
    folder, _ = plane_stack
    r = run("predict", folder, "-o", tmp_path / "d.png", "--window", "9")
    assert r.exit_code == 0, r.stderr
    meta = json.loads((tmp_path / "d.json").read_text())
    assert meta["focal_version"] == focalcli.__version__
    assert meta["options"] == {"align": "auto", "measure": "laplacian", "window": 9}  # as given
    assert meta["align"]["check"]["threshold_px"] == 0.5  # the default for frames of up to 640 px
    resolved = meta["resolved"]
    assert resolved["window"] == 9 and resolved["window_large_sigma_px"] == pytest.approx(9 / 12 ** 0.5, abs=1e-3)
    assert resolved["smooth"] == 1.0  # 1 % of the 96 px short side, at least 1 px
    assert {"presmooth_sigma_px", "window_small_sigma_px"} <= set(resolved)
    assert meta["align"]["mode"] == "auto" and "model" not in meta


def test_sidecar_names_the_model_file_and_its_hash(plane_stack, tmp_path):
    from focalcli.weights import export_model
    from tests.models_common import micro

    weights = tmp_path / "micro.safetensors"
    export_model(micro(True), weights)
    folder, _ = plane_stack
    r = run("predict", folder, "-o", tmp_path / "d.npy", "--method", "model", "--weights", weights, "--max-size", "64")
    assert r.exit_code == 0, r.stderr
    model = json.loads((tmp_path / "d.json").read_text())["model"]
    assert model == {"file": "micro.safetensors", "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                     "bytes": weights.stat().st_size, "shipped": False}


def test_several_depth_files_share_one_sidecar(plane_stack, tmp_path):
    folder, _ = plane_stack
    r = run("predict", folder, "-o", tmp_path / "d.png", "-o", tmp_path / "d.npy", "-o", tmp_path / "e.tiff",
            "--preview", "--json")
    assert r.exit_code == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["d.json", "d.npy", "d.png", "d_preview.png", "e.json", "e.tiff", "e_preview.png"]
    assert json.loads((tmp_path / "d.json").read_text()) == json.loads((tmp_path / "e.json").read_text())
    npy = read_depth(tmp_path / "d.npy")
    assert np.abs(read_depth(tmp_path / "d.png") - npy).max() <= 0.0006
    assert np.array_equal(read_depth(tmp_path / "e.tiff"), npy)
    outputs = json.loads(r.stdout)["outputs"]
    assert outputs["depth"] == str(tmp_path / "d.png") and outputs["depth_2"] == str(tmp_path / "d.npy")


def test_batch_writes_several_formats(tiny_stack, plane_stack, tmp_path):
    r = run("predict", tiny_stack.parent, "-o", tmp_path / "out", "--format", "png", "--format", "npy")
    assert r.exit_code == 0, r.stderr
    for name in ("tiny", "plane"):
        assert {p.name for p in (tmp_path / "out" / name).iterdir()} == {"depth.png", "depth.npy", "depth.json"}


# ------------------------------------------------------------------------------------------------ point cloud


def test_ply_point_cloud_from_metric_depth(tmp_path):
    frames, _, focus = synthetic.slanted_plane(h=48, w=64, n=6)
    camera = {"focal_length_mm": 50.0, "f_number": 2.0, "pixel_pitch_um": 20.0}
    folder = write_frames(tmp_path / "s", frames, focus=focus, camera=camera)
    r = run("predict", folder, "-o", tmp_path / "d.npy", "--ply", tmp_path / "cloud.ply", "--align", "off")
    assert r.exit_code == 0, r.stderr
    points, rgb = read_ply(tmp_path / "cloud.ply")
    d = np.load(tmp_path / "d.npy")
    assert len(points) == (d > 0).sum() == json.loads((tmp_path / "d.json").read_text())["ply_points"]
    assert points.dtype == np.float32 and rgb.dtype == np.uint8 and rgb.shape == points.shape
    np.testing.assert_allclose(points[:, 2], d[d > 0], rtol=1e-6)
    # pinhole at the middle frame's image distance v = 1 / (1/f - 1/s): X = (u - cx) * pitch * Z / v
    s = focus[(len(focus) - 1) // 2]
    v = 1 / (1 / 0.05 - 1 / s)
    z = d[0, 0]
    np.testing.assert_allclose(points[0], [-31.5 * 20e-6 * z / v, -23.5 * 20e-6 * z / v, z], rtol=1e-4)
    header = (tmp_path / "cloud.ply").read_bytes()[:400]
    assert header.startswith(b"ply\nformat binary_little_endian 1.0\n") and b"property uchar red" in header


def test_ply_refused_without_intrinsics(plane_stack, tmp_path):
    folder, _ = plane_stack  # focus distances and a focal length, but no pixel pitch
    r = run("predict", folder, "-o", tmp_path / "d.npy", "--ply", tmp_path / "c.ply")
    assert_one_line_error(r, 3, "camera.pixel_pitch_um")
    assert not list(tmp_path.glob("*.*"))


# ------------------------------------------------------------------------------------------------ previews


def test_preview_colour_map_fixed_range_and_colour_bar(plane_stack, tmp_path):
    folder, truth = plane_stack
    r = run("predict", folder, "-o", tmp_path / "d.npy", "--preview", "--colormap", "gray", "--range", "0.5,1.0")
    assert r.exit_code == 0, r.stderr
    preview = cv2.imread(str(tmp_path / "d_preview.png"))
    h, w = truth.shape
    assert preview.shape[1] == w and preview.shape[0] > h  # a colour bar below the image
    image = preview[:h].astype(int)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()  # gray
    assert json.loads((tmp_path / "d.json").read_text())["preview"] == {
        "colormap": "gray", "range": [0.5, 1.0], "range_source": "--range"}
    # the bar runs from the map's near end (white for gray) on the left to its far end on the right
    bar = preview[h + 1].astype(int)
    assert bar[0].min() > 240 and bar[-1].max() < 15


def test_fixed_range_makes_previews_comparable():
    from focalcli.io.depth import colorize_depth

    a = np.full((4, 4), 0.7, np.float32)
    b = np.linspace(0.5, 2.0, 16, dtype=np.float32).reshape(4, 4)
    b[0, 0] = 0.7
    assert not np.array_equal(colorize_depth(a)[0, 0], colorize_depth(b)[0, 0])  # percentiles: not comparable
    assert np.array_equal(colorize_depth(a, depth_range=(0.5, 1.0))[0, 0],
                          colorize_depth(b, depth_range=(0.5, 1.0))[0, 0])
    with pytest.raises(ValueError, match="colour map"):
        colorize_depth(a, colormap="rainbow-unicorn")


# ------------------------------------------------------------------------------------------------ batch discovery


def test_batch_finds_nested_stacks_mirrors_paths_and_lists_skipped_folders(tmp_path):
    frames, _, _ = synthetic.step_planes(h=32, w=40, n=3)
    root = tmp_path / "shoots"
    for rel in ("ring/input", "pcb/pcb", "pcb/pcb_depthmap", "beetle"):
        write_frames(root / rel, frames)
    (root / "empty").mkdir()
    (root / "docs").mkdir()
    (root / "docs" / "notes.txt").write_text("not a stack")
    (root / "pcb" / "SOURCE.md").write_text("licence")
    r = run("predict", root, "-o", tmp_path / "results", "--json")
    assert r.exit_code == 0, r.stderr
    summaries = json.loads(r.stdout)
    assert len(summaries) == 4
    made = sorted(p.relative_to(tmp_path / "results").as_posix() for p in (tmp_path / "results").rglob("depth.png"))
    assert made == ["beetle/depth.png", "pcb/pcb/depth.png", "pcb/pcb_depthmap/depth.png", "ring/input/depth.png"]
    err = " ".join(r.stderr.split())
    assert "skipped" in err and "docs: no image files (1 other file(s), e.g. notes.txt)" in err
    assert "empty: empty" in err
    again = run("predict", root, "-o", tmp_path / "results")  # complete stacks are found again and skipped
    assert again.exit_code == 0 and again.stderr.count("its outputs are complete already") == 4
    sidecar = tmp_path / "results" / "beetle" / "depth.json"  # as versions that wrote the default threshold
    meta = json.loads(sidecar.read_text())
    meta["options"]["align_threshold_px"] = 0.5
    sidecar.write_text(json.dumps(meta))
    again = run("predict", root, "-o", tmp_path / "results")
    assert again.exit_code == 0 and again.stderr.count("its outputs are complete already") == 4
    meta["options"]["align_threshold_px"] = 2.0  # another threshold: not this command's result
    sidecar.write_text(json.dumps(meta))
    assert run("predict", root, "-o", tmp_path / "results").exit_code != 0


def test_batch_output_inside_the_input_is_not_searched(tmp_path):
    frames, _, _ = synthetic.step_planes(h=32, w=40, n=3)
    write_frames(tmp_path / "shoots" / "a", frames)
    for _ in range(2):  # the second run must not take results/a (depth.png is an image) for a stack
        r = run("predict", tmp_path / "shoots", "-o", tmp_path / "shoots" / "results")
        assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "shoots" / "results").iterdir()) == ["a"]


# ------------------------------------------------------------------------------------------------ output folders


def test_outputs_create_missing_folders(tmp_path):
    frames, _, focus = synthetic.slanted_plane()
    folder = write_frames(tmp_path / "in" / "plane", frames, focus=focus)
    r = run("predict", folder, "-o", tmp_path / "out" / "deep" / "d.png", "--aif", tmp_path / "aif" / "a.png",
            "--preview")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "out" / "deep" / "d_preview.png").is_file() and (tmp_path / "aif" / "a.png").is_file()
    assert run("fuse", folder, "-o", tmp_path / "f" / "g" / "a.png").exit_code == 0
    assert run("align", folder, "-o", tmp_path / "al" / "aligned").exit_code == 0
    assert (tmp_path / "al" / "aligned" / "stack.json").is_file()
    assert run("predict", folder.parent, "-o", tmp_path / "b" / "c" / "out").exit_code == 0
    assert (tmp_path / "b" / "c" / "out" / "plane" / "depth.png").is_file()
    assert not (tmp_path / "in" / "plane" / "depth.png").exists()
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files or staging folders left


def test_a_failed_command_creates_no_folder(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"f{i}.png", np.full((16, 16, 3), 0.5, np.float32))
    (folder / "f1.png").write_bytes(b"broken")
    assert_one_line_error(run("predict", folder, "-o", tmp_path / "new" / "d.png"), 3, "f1.png")
    assert not (tmp_path / "new").exists()
    assert_one_line_error(run("fuse", folder, "-o", tmp_path / "new2" / "a.png"), 3, "f1.png")
    assert not (tmp_path / "new2").exists()


# ------------------------------------------------------------------------------------------------ -v / -q


def test_verbosity_flags_after_the_subcommand(tiny_stack, tmp_path):
    quiet = run("predict", tiny_stack, "-o", tmp_path / "a.npy", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    loud = run("predict", tiny_stack, "-o", tmp_path / "b.npy", "-v")
    assert loud.exit_code == 0
    err = " ".join(loud.stderr.split())
    assert "seconds: reading" in err and "depth" in err and "total" in err  # per-stage timings
    assert "predict tiny: depth 3/3:" in err  # per-frame timings
    assert "not aligned" in err  # the auto decision, shown with -v


def test_hoist_global_flags():
    from focalcli.cli.app import hoist_global_flags

    assert hoist_global_flags(["predict", "s", "-o", "d.png", "-vv", "--quiet"]) == [
        "-vv", "--quiet", "predict", "s", "-o", "d.png"]
    assert hoist_global_flags(["-v", "info", "s"]) == ["-v", "info", "s"]
    assert hoist_global_flags(["info", "--", "-v"]) == ["info", "--", "-v"]
    assert hoist_global_flags(["--help"]) == ["--help"]
