"""The validation-set builder, the textbook baseline and the depth benchmark."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from focalcli.bench.__main__ import app as bench_app
from focalcli.bench.baselines import textbook_depth
from focalcli.bench.depth import METHODS, score_valset
from focalcli.bench.valset import SETS, build_valset, focus_schedule
from focalcli.cli.app import app
from focalcli.errors import OutputError
from focalcli.io.images import write_image
from focalcli.io.stack import scan_stack
from tests import synthetic

runner = CliRunner()


def _rgbd(root, sizes):
    """Folder pairs rgb/NAME.png + depth/NAME.npy: a random texture on a near-to-far ramp with a hole."""
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        write_image(root / "rgb" / f"s{i}.png", rng.random((h, w, 3)).astype(np.float32))
        depth = np.linspace(0.8, 3.0, w, dtype=np.float32)[None].repeat(h, 0)
        depth[:2, :2] = 0.0
        np.save(root / "depth" / f"s{i}.npy", depth)
    return root


def test_focus_schedules_are_uniform_in_dioptres():
    uniform = focus_schedule("uniform", 10, None)
    assert uniform[0] == pytest.approx(0.6) and uniform[-1] == pytest.approx(10.0)
    assert np.allclose(np.diff(1 / np.array(uniform)), (1 / 10 - 1 / 0.6) / 9)
    depth = np.linspace(1.0, 2.0, 1000, dtype=np.float32)
    d = focus_schedule("depth", 5, np.concatenate([depth, np.zeros(100, np.float32)]))  # zeros are holes
    assert d[0] == pytest.approx(np.percentile(depth, 5), rel=1e-3)
    assert d[-1] == pytest.approx(np.percentile(depth, 95), rel=1e-3)
    s = focus_schedule("subject", 10, depth)  # the nearer half: the farther half lies beyond the far plane
    assert s[0] == pytest.approx(np.percentile(depth, 5), rel=1e-3)
    assert s[-1] == pytest.approx(np.percentile(depth, 50), rel=1e-3)


def test_valset_layout_reproducible_and_readable_by_eval(tmp_path):
    rgbd = _rgbd(tmp_path / "rgbd", [(40, 700), (24, 32), (30, 36)])
    out = tmp_path / "val"
    manifest = build_valset(rgbd, out, holdout=2, seed=3)
    assert [s["name"] for s in manifest["scenes"]] == ["s0", "s2"]  # every 2nd scene from the first
    assert manifest["seed"] == 3 and "reference_render" in manifest["renderer"]
    assert json.loads((out / "manifest.json").read_text())["scenes"][0]["size"] == [37, 640]  # long side 640
    for vs in SETS:
        sf = scan_stack(out / vs.name / "s2" / "stack")
        assert len(sf) == vs.frames and sf.info.bit_depth == 8
        assert sf.camera.f_number == vs.f_number and sf.camera.focal_length_mm == 50.0
        assert sf.camera.pixel_pitch_um == pytest.approx(36000 / 36)
        depth = np.load(out / vs.name / "s2" / "depth.npy")
        assert depth.dtype == np.float32 and depth.shape == (30, 36) and depth[0, 0] == 0  # holes stay invalid
    shot = {s: manifest["scenes"][1]["stacks"][s.name]["shot_noise"] for s in SETS}
    assert len(set(shot.values())) == len(SETS) and all(1e-4 <= v <= 2e-3 for v in shot.values())

    drift = manifest["scenes"][1]["stacks"]["f2-n10-drift"]["exposure_gains"]
    assert len(drift) == 10 and all(0.77 < g < 1.29 for g in drift) and len(set(drift)) == 10
    assert "exposure_gains" not in manifest["scenes"][1]["stacks"]["f2-n10-uniform"]
    moved = manifest["scenes"][1]["stacks"]["f2-n10-breathing"]["breathing"]
    assert moved["scales"][4] == 1.0 and moved["shifts_px"][4] == [0.0, 0.0]  # the reference frame stays put
    assert 0.01 <= abs(moved["scales"][-1] - moved["scales"][0]) <= 0.04 and len(moved["shifts_px"]) == 10
    assert "breathing" not in manifest["scenes"][1]["stacks"]["f2-n10-uniform"]
    assert manifest["breathing"]["sets"] == ["f2-n10-breathing"]
    jpeg = sorted(p.name for p in (out / "f2-n10-jpeg" / "s2" / "stack").iterdir())
    assert jpeg[0] == "frame_00.jpg" and len(jpeg) == 11 and manifest["jpeg"]["sets"] == ["f2-n10-jpeg"]
    again = build_valset(rgbd, tmp_path / "val2", holdout=2, seed=3)
    assert again["scenes"] == manifest["scenes"]
    a = (out / "f2-n10-depth" / "s2" / "stack" / "frame_04.png").read_bytes()
    assert a == (tmp_path / "val2" / "f2-n10-depth" / "s2" / "stack" / "frame_04.png").read_bytes()
    with pytest.raises(OutputError, match="exists already"):
        build_valset(rgbd, out, holdout=2)

    res = runner.invoke(app, ["eval", "--data", f"stacks:{out / 'f2.8-n5-uniform'}", "--method", "classic"])
    assert res.exit_code == 0, res.output
    rows = score_valset(out, ["textbook"])
    assert [r["set"] for r in rows] == [s.name for s in SETS] and all(r["count"] == 2 for r in rows)
    assert all(0 <= r["abs_rel"] < 10 and r["seconds"] > 0 for r in rows)


def test_breathing_warps_magnify_about_the_centre_and_keep_the_reference():
    from focalcli.bench.valset import SHAKE_PX, breathing_warps

    focus = focus_schedule("uniform", 10, None)
    matrices, scales, shifts = breathing_warps(np.random.default_rng(1), focus, 65, 49)
    assert np.allclose(matrices[4], [[1, 0, 0], [0, 1, 0]])  # (N - 1) // 2: focal align's reference
    steps = np.diff(scales)
    assert np.allclose(steps, steps[0], rtol=1e-6) and 0.01 <= abs(scales[-1] - scales[0]) <= 0.04  # linear in D
    for m, s, (dx, dy) in zip(matrices, scales, shifts, strict=True):
        centre = m @ np.array([32.0, 24.0, 1.0])  # the image centre moves by the shift only
        assert np.allclose(centre, [32.0 + dx, 24.0 + dy]) and abs(dx) <= SHAKE_PX and m[0, 0] == s


def test_bench_commands(tmp_path):
    rgbd = _rgbd(tmp_path / "rgbd", [(24, 32)])
    out = tmp_path / "val"
    res = runner.invoke(bench_app, ["valset", "--rgbd", str(rgbd), "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(bench_app, ["valset", "--rgbd", str(rgbd), "-o", str(out)])
    assert res.exit_code == 6 and "exists already" in res.output
    res = runner.invoke(bench_app, ["depth", "--valset", str(out), "--json", str(tmp_path / "d.json")])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "d.json").read_text())["results"]
    assert {(r["set"], r["method"]) for r in results} == {(s.name, m) for s in SETS for m in ("textbook", "classic")}
    res = runner.invoke(bench_app, ["depth", "--valset", str(out), "--methods", "oracle"])
    assert res.exit_code == 4 and "unknown method" in res.output
    res = runner.invoke(bench_app, ["fuse", "--valset", str(out), "--methods", "best-frame,textbook,focal",
                                    "--json", str(tmp_path / "f.json")])
    assert res.exit_code == 0, res.output
    fused = json.loads((tmp_path / "f.json").read_text())["results"]
    assert {(r["set"], r["method"]) for r in fused} == {(s.name, m) for s in SETS
                                                        for m in ("best-frame", "textbook", "focal")}
    assert all(r["count"] == 1 and 0 < r["psnr"] < 99 and -1 <= r["ssim"] <= 1 for r in fused)  # 24x32 px: no ranking
    res = runner.invoke(bench_app, ["fuse", "--valset", str(out), "--methods", "oracle"])
    assert res.exit_code == 4 and "unknown method" in res.output
    assert "textbook" in METHODS and "classic" in METHODS


def test_textbook_baseline_finds_a_slanted_plane():
    frames, depth, focus = synthetic.slanted_plane()
    pred = textbook_depth(iter(frames), list(focus))
    err = np.abs(pred - depth) / depth
    assert np.median(err) < 0.05


def test_gt_frame_index_is_linear_in_diopters_and_empty_outside():
    from focalcli.bench.depth import gt_frame_index

    focus = [0.5, 1.0, 2.0]  # diopters 2, 1, 0.5
    depth = np.array([[0.5, 2 / 3, 1.0, 2.0, 0.4, 3.0, 0.0]])  # 2 D, 1.5 D, 1 D, 0.5 D, 2.5 D, 0.33 D, hole
    idx = gt_frame_index(depth, focus)
    assert idx[0, :4].tolist() == pytest.approx([0.0, 0.5, 1.0, 2.0])
    assert np.isnan(idx[0, 4:]).all()


def test_frame_index_scores_a_plane_without_focus_distances(tmp_path):
    from focalcli.bench.depth import score_frame_index

    rgbd = _rgbd(tmp_path / "rgbd", [(48, 64)])
    out = tmp_path / "val"
    build_valset(rgbd, out, holdout=0, seed=0)
    rows = score_frame_index(out, ["textbook", "classic"])
    assert {r["method"] for r in rows} == {"textbook", "classic"}
    long = [r for r in rows if r["set"] == "f2-n41-depth"]
    assert long and all(0 <= r["rmse_frames"] < 41 and 0 <= r["within_half"] <= 1 for r in long)


def test_image_scores_rank_a_closer_image_higher():
    from focalcli.bench.fuse import image_scores

    truth = synthetic.texture(64, 80, seed=1)
    near = np.clip(truth + 0.01 * np.random.default_rng(0).standard_normal(truth.shape), 0, 1)
    far = cv2_blur(truth)
    (p1, s1), (p2, s2) = image_scores(near, truth), image_scores(far, truth)
    assert p1 > p2 and s1 > s2 and image_scores(truth, truth) == (float("inf"), 1.0)


def cv2_blur(image):
    import cv2

    return cv2.GaussianBlur(image, (0, 0), 2.0)
