import json

import numpy as np
from typer.testing import CliRunner

from focalcli.cli.app import app
from tests.datasets_tiny import write_ddff_h5

runner = CliRunner()


def test_eval_classic_on_ddff_writes_json(tmp_path):
    h5 = write_ddff_h5(tmp_path / "d.h5", n_val=2)
    out = tmp_path / "r.json"
    res = runner.invoke(app, ["eval", "--method", "classic", "--data", f"ddff:{h5}", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "abs_rel" in res.stdout and "mean" in res.stdout
    report = json.loads(out.read_text())
    assert report["protocol"] == "ddff" and report["count"] == 2
    assert set(report["mean"]) == {"abs_rel", "sq_rel", "rmse", "log_rmse", "bump", "delta1", "delta2", "delta3"}
    assert [r["name"] for r in report["rows"]] == ["val_0000", "val_0001"]
    again = runner.invoke(app, ["eval", "--method", "classic", "--data", f"ddff:{h5}", "--json", str(out)])
    assert again.exit_code == 6 and "exists already" in again.output


def test_eval_needs_a_method(tmp_path):
    res = runner.invoke(app, ["eval", "--data", "procedural"])
    assert res.exit_code == 2 and "--method classic" in res.output
    w = tmp_path / "m.safetensors"
    w.write_bytes(b"x")
    res = runner.invoke(app, ["eval", "--data", "procedural", "--method", "classic", "--weights", str(w)])
    assert res.exit_code == 2 and "--method model" in res.output


def test_eval_bad_data(tmp_path):
    res = runner.invoke(app, ["eval", "--method", "classic", "--data", "nyu:x"])
    assert res.exit_code == 4 and "unknown kind" in res.output
    res = runner.invoke(app, ["eval", "--method", "classic", "--data", f"ddff:{tmp_path / 'no.h5'}"])
    assert res.exit_code == 3 and "no such file" in res.output
    res = runner.invoke(app, ["eval", "--method", "classic", "--data", "procedural", "--protocol", "kitti"])
    assert res.exit_code == 2


def test_eval_aligns_as_predict_does(tmp_path):
    from tests.conftest import write_frames
    from tests.synthetic_align import breathing_stack

    frames, depth, focus = breathing_stack(step=0.006)
    folder = write_frames(tmp_path / "set" / "s0" / "stack", frames, focus=focus)
    np.save(folder.parent / "depth.npy", depth)
    scores = {}
    for flags in ([], ["--align", "off"], ["--align"]):  # auto (the default, as focal predict), off, on
        out = tmp_path / f"r{len(scores)}.json"
        res = runner.invoke(app, ["eval", "--method", "classic", "--data", f"stacks:{tmp_path / 'set'}",
                                  "--protocol", "metric", "--json", str(out), *flags])
        assert res.exit_code == 0, res.output
        scores[" ".join(flags) or "auto"] = json.loads(out.read_text())["mean"]["abs_rel"]
    assert scores["auto"] == scores["--align"] < 0.85 * scores["--align off"], scores
