"""Classic options of ``focal predict``: --smooth bounds and the default filling."""

import json

import numpy as np
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.io.depth import read_depth

runner = CliRunner()


def test_smooth_must_be_finite(plane_stack, tmp_path):
    folder, _ = plane_stack
    for bad in ("inf", "nan"):
        r = runner.invoke(app, ["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--smooth", bad])
        assert r.exit_code == 4 and "--smooth must be a finite number" in r.output
        assert len(r.output.strip().splitlines()) == 1
    r = runner.invoke(app, ["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--smooth", "-1"])
    assert r.exit_code == 2
    assert not (tmp_path / "d.npy").exists()


def test_smooth_default_zero_and_huge(plane_stack, tmp_path):
    folder, depth = plane_stack
    inner = (slice(8, -8), slice(8, -8))
    errors = {}
    for smooth in (None, "0", "1e6"):
        out = tmp_path / f"d{smooth}.npy"
        r = runner.invoke(app, ["predict", str(folder), "-o", str(out), *(["--smooth", smooth] if smooth else [])])
        assert r.exit_code == 0, r.output
        d = read_depth(out)
        assert np.isfinite(d).all()
        errors[smooth] = float(np.mean(np.abs(d[inner] - depth[inner]) / depth[inner]))
        options = json.loads(out.with_suffix(".json").read_text())["options"]
        assert ("smooth" in options) == (smooth is not None)
    assert errors[None] < 0.05 and errors["0"] < 0.05
    assert errors["1e6"] < 0.3  # one depth for the whole plane: the fill's scale is capped at the image size
