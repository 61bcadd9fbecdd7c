import json

from typer.testing import CliRunner

from focalcli.bench.__main__ import app as bench_app


def test_bench_models_times_focusvolume_on_torch_and_on_its_numpy_twin():
    r = CliRunner().invoke(bench_app, ["models", "--presets", "focusvolume", "--sizes", "32", "--frames", "3",
                                       "--repeats", "1", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout[r.stdout.index("["):])
    assert [row["preset"] for row in rows] == ["focusvolume", "focusvolume (numpy)"]
    assert all(row["seconds"] > 0 and row["shares"] is None for row in rows)
