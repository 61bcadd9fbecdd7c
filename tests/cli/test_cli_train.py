import json

from typer.testing import CliRunner

from focalcli.cli.app import app
from tests.datasets_tiny import write_stacks
from tests.train_tiny import TINY

runner = CliRunner()


def test_train_export_eval_end_to_end(tmp_path):
    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    toml = tmp_path / "run.toml"
    toml.write_text('crop = 16\nbatch_size = 2\nwarmup_steps = 1\nval_stacks = 1\nlog_every = 1\nworkers = 0\n'
                    'steps = 99\nmodel = "focdepthformer-tiny"\n[model_options]\n'
                    + "".join(f"{k} = {json.dumps(v)}\n" for k, v in TINY.items()))
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "--data", f"stacks:{data}", "--steps", "3", "--out", str(run), "--config",
                              str(toml), "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps"] == 3  # the flag wins over the file
    assert json.loads((run / "config.json").read_text())["model_options"]["width"] == 32
    again = runner.invoke(app, ["train", "--data", f"stacks:{data}", "--steps", "3", "--out", str(run)])
    assert again.exit_code == 6 and "not empty" in again.output
    more = runner.invoke(app, ["train", "--out", str(run), "--resume", "--steps", "4"])
    assert more.exit_code == 0, more.output
    model = tmp_path / "m.safetensors"
    res = runner.invoke(app, ["export", str(run / "best.pt"), "-o", str(model)])
    assert res.exit_code == 0, res.output
    from focalcli.weights import read_metadata

    assert "stacks:" in read_metadata(model)["trained_on"]
    res = runner.invoke(app, ["eval", "--weights", str(model), "--data", f"stacks:{data}", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "protocol metric" in res.stdout


def test_train_config_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("stepz = 3\n")
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--config", str(bad)])
    assert res.exit_code == 4 and "unknown key(s) stepz" in res.output
    bad.write_text('steps = "many"\n')
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--config", str(bad)])
    assert res.exit_code == 4 and "'steps' must be int" in res.output
    res = runner.invoke(app, ["train", "--out", str(tmp_path / "r"), "--data", "nyu:x"])
    assert res.exit_code == 4 and "unknown kind" in res.output


def test_export_refuses_foreign_files(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"junk")
    res = runner.invoke(app, ["export", str(tmp_path / "x.pt"), "-o", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 5 and "not a readable" in res.output
    res = runner.invoke(app, ["export", str(tmp_path / "x.pt"), "-o", str(tmp_path / "m.bin")])
    assert res.exit_code == 6
