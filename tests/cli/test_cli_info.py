"""`focal info`."""

import json

from typer.testing import CliRunner

from focalcli.cli.app import app
from tests.cli.asserts import assert_one_line_error

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_info(plane_stack, tiny_stack):
    folder, _ = plane_stack
    r = run("info", folder, "--json")
    assert r.exit_code == 0
    s = json.loads(r.stdout)
    assert s["count"] == 10 and s["width"] == 128 and s["height"] == 96 and s["bit_depth"] == 8
    assert s["focus_distance_source"] == "stack.json" and len(s["focus_distances_m"]) == 10
    assert "camera.pixel_pitch_um" in s["missing"]
    r = run("info", tiny_stack)
    assert r.exit_code == 0 and "focus     unknown" in r.stdout
    assert_one_line_error(run("info", tiny_stack / "nope"), 3, "no such folder")
