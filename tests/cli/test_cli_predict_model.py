"""focal predict --method model: a trained (here: random micro) FocDepthFormer exported with focal's weights."""

import json

import numpy as np
import torch
from typer.testing import CliRunner

from focalcli.cli.app import app
from tests.cli.asserts import assert_one_line_error

runner = CliRunner()


def test_model_method_metric_with_focus_distances(plane_stack, tmp_path, micro_weights):
    folder, gt = plane_stack
    r = runner.invoke(app, ["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--method", "model",
                            "--weights", str(micro_weights), "--aif", str(tmp_path / "aif.png"), "--json",
                            "--max-size", "64"])
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["units"] == "m" and s["method"] == "model" and s["options"]["weights"] == str(micro_weights)
    d = np.load(tmp_path / "d.npy")
    assert d.shape == gt.shape and np.isfinite(d).all() and d.min() > 0
    # the metric head is a softmax over the frames' diopters: depth stays within the schedule
    fd = json.loads((folder / "stack.json").read_text())["focus_distances_m"]
    assert min(fd) - 1e-3 <= d.min() and d.max() <= max(fd) + 1e-3
    assert (tmp_path / "aif.png").is_file()


def test_model_method_frame_index_without_focus_distances(tiny_stack, tmp_path, micro_weights):
    """Without focus distances the model answers in the classic method's units: 1 = nearest frame, N = farthest."""
    r = runner.invoke(app, ["predict", str(tiny_stack), "-o", str(tmp_path / "d.npy"), "--method", "model",
                            "--weights", str(micro_weights), "--confidence", str(tmp_path / "c.npy")])
    assert r.exit_code == 0, r.stderr
    assert "frame-index units" in r.stderr
    d = np.load(tmp_path / "d.npy")
    assert d.shape == (32, 40) and d.min() >= 0.0 and d.max() <= 3 + 1  # 3 frames, +- one spacing
    assert json.loads((tmp_path / "d.json").read_text())["units"] == "frame_index"
    c = np.load(tmp_path / "c.npy")
    assert c.shape == (32, 40) and c.min() >= 0 and c.max() <= 1


def test_model_method_errors(tiny_stack, tmp_path, micro_weights):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    assert_one_line_error(runner.invoke(app, ["predict", str(tiny_stack), "-o", str(tmp_path / "d.png"), "--method",
                                              "model", "--weights", str(bad)]), 5, "bad.safetensors")
    assert not (tmp_path / "d.png").exists()
    r = runner.invoke(app, ["predict", str(tiny_stack), "-o", str(tmp_path / "d.png"), "--method", "model",
                            "--weights", str(micro_weights), "--precision", "fp64"])
    assert r.exit_code == 2


def test_shipped_default_model(plane_stack, tmp_path):
    from focalcli.learned import default_weights
    from focalcli.weights import read_metadata

    meta = read_metadata(default_weights())
    assert meta["model"] == "focusvolume"
    folder, gt = plane_stack
    r = runner.invoke(app, ["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--method", "model", "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["units"] == "m"
    d = np.load(tmp_path / "d.npy")
    assert d.shape == gt.shape and np.isfinite(d).all() and d.min() > 0


def test_batch_model_writes_confidence(tiny_stack, plane_stack, tmp_path, micro_weights):
    root = tiny_stack.parent
    r = runner.invoke(app, ["predict", str(root), "-o", str(tmp_path / "out"), "--method", "model", "--weights",
                            str(micro_weights), "--confidence", "c.npy", "--format", "npy"])
    assert r.exit_code == 0, r.stderr
    for name in ("tiny", "plane"):
        assert np.load(tmp_path / "out" / name / "c.npy").shape == np.load(tmp_path / "out" / name / "depth.npy").shape


def test_device_errors_are_one_line(tiny_stack, tmp_path, micro_weights, monkeypatch):
    base = ["predict", str(tiny_stack), "-o", str(tmp_path / "d.npy"), "--method", "model", "--weights",
            str(micro_weights)]
    assert_one_line_error(runner.invoke(app, [*base, "--device", "cpu", "--precision", "fp16"]), 4, "fp16 is for GPUs")
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 1)
    assert_one_line_error(runner.invoke(app, [*base, "--device", "cuda:3"]), 4, "'cuda:3' does not exist")
    monkeypatch.undo()

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB. GPU 0 has a total capacity of "
                                     "7.6 GiB\nmore lines")

    monkeypatch.setattr("focalcli.models.focdepthformer.FocDepthFormer.forward", out_of_memory)
    assert_one_line_error(runner.invoke(app, [*base, "--device", "cpu"]), 4, "out of memory on cpu")
    assert not (tmp_path / "d.npy").exists()
