"""``python -m focalcli.bench startup``: end-to-end timings of fresh processes, each checkout from its own root."""

import json
import subprocess
import sys
from pathlib import Path

from focalcli.bench.startup import make_stack, time_commands


def test_startup_rows_and_a_stack_that_predicts(tmp_path):
    folder = make_stack(tmp_path / "stack", frames=4, size=(64, 48))
    root = Path(__file__).resolve().parents[1]
    commands = {"python -c pass": ["python", "-c", "pass"],
                "predict classic": ["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--overwrite"]}
    rows = time_commands(commands, {"this": root}, runs=1, warmup=0)
    assert [r["command"] for r in rows] == list(commands)
    assert all(r["runs"] == 1 and 0 < r["min_s"] <= r["median_s"] and r["cpu_s"] >= 0 for r in rows)
    assert json.loads((tmp_path / "d.json").read_text())["units"] == "m"  # the stack has focus distances


def test_against_runs_the_other_checkouts_code(tmp_path):
    """``python -m`` puts the working folder first on sys.path: a checkout must run from its own root, or both
    rows would time the same code."""
    other = tmp_path / "other"
    (other / "focalcli").mkdir(parents=True)
    (other / "focalcli" / "__init__.py").write_text("")
    (other / "focalcli" / "__main__.py").write_text("import sys; sys.exit(7)\n")  # not focal: exits 7
    root = Path(__file__).resolve().parents[1]
    try:
        time_commands({"focal --help": ["--help"]}, {"this": root, "against": other}, runs=1, warmup=0)
    except RuntimeError as e:
        assert "exit code 7" in str(e)
    else:
        raise AssertionError("the other checkout's focalcli did not run")


def test_cli_table(tmp_path):
    r = subprocess.run([sys.executable, "-m", "focalcli.bench", "startup", "--runs", "1", "--warmup", "0",
                        "--commands", "python -c pass,focal --help", "--json", str(tmp_path / "t.json")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads((tmp_path / "t.json").read_text())["rows"]
    assert [row["command"] for row in rows] == ["python -c pass", "focal --help"]
