"""`focal fuse`: the all-in-focus image."""

import numpy as np
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.io.images import read_image
from tests import synthetic
from tests.cli.asserts import assert_one_line_error
from tests.conftest import write_frames

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fuse(plane_stack, tmp_path):
    folder, _ = plane_stack
    r = run("fuse", folder, "-o", tmp_path / "aif.tif")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "aif.tif").is_file()
    assert_one_line_error(run("fuse", folder, "-o", tmp_path / "aif.tif"), 6, "exists already")
    assert_one_line_error(run("fuse", folder, "-o", tmp_path / "aif.npy"), 6, "unknown output extension")


def test_fused_image_takes_each_region_from_its_sharp_frame(tmp_path):
    """Two planes, each exactly in focus in one frame: the fused image is sharper than every frame, region by region
    it is the in-focus frame (away from the step, where both frames are blurred by the other plane's spread)."""
    h, w = 64, 96
    sharp = synthetic.texture(h, w, seed=1)
    depth = np.full((h, w), 1.2, np.float32)
    depth[:, : w // 2] = 0.6
    focus = np.array([0.6, 0.8, 1.2])
    frames = synthetic.render(sharp, depth, focus, gain=6.0)  # (3, H, W, 3); frame 0 sharp left, frame 2 right
    folder = write_frames(tmp_path / "steps", frames, focus=focus)
    r = run("fuse", folder, "-o", tmp_path / "aif.png", "--align", "off")
    assert r.exit_code == 0, r.stderr
    fused, _ = read_image(tmp_path / "aif.png")
    left, right = np.s_[:, 4 : w // 2 - 8], np.s_[:, w // 2 + 8 : -4]

    def err(img, region):
        return float(np.abs(img[region] - sharp[region]).mean())

    assert err(fused, left) < 0.01 and err(fused, right) < 0.01  # 8-bit rounding and a little bleed
    for k in range(3):
        whole = np.s_[:, 4:-4]
        assert err(fused, whole) < 0.5 * err(frames[k], whole), k  # no single frame is sharp everywhere
    assert err(frames[2], left) > 5 * err(fused, left) and err(frames[0], right) > 5 * err(fused, right)
