import json
import math
from dataclasses import replace

import pytest
import torch

from focalcli.errors import ConfigError, OutputError
from focalcli.train.checkpoint import load_checkpoint
from focalcli.train.config import RUNTIME_KEYS, TrainConfig
from focalcli.train.loop import train
from tests.datasets_tiny import write_stacks
from tests.train_tiny import TINY, read_log, tiny_config, train_killed_at


# A model small enough that a step takes a few tens of milliseconds on one CPU core.
def test_train_smoke_20_steps(tmp_path):
    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    seen = []
    summary = train(tiny_config(data), tmp_path / "run", progress=lambda done, total, s: seen.append(done))
    assert seen == list(range(1, 21))
    log = read_log(tmp_path / "run")
    losses = [r["loss"] for r in log if "loss" in r]
    vals = [r for r in log if "val" in r]
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses)
    assert [v["step"] for v in vals] == [9, 19] and "abs_rel" in vals[0]["val"][f"stacks:{data}:1.0"]
    assert summary["best_val_abs_rel"] == min(v["val_abs_rel"] for v in vals)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["step"] == 20 and state["config"]["model_options"] == TINY
    assert (tmp_path / "run" / "best.pt").is_file()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 20
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in state["model"])


def test_resume_gives_the_same_next_losses(tmp_path):
    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    cfg = tiny_config(data, steps=6, save_every=2, val_every=0)
    train(cfg, tmp_path / "full")

    train_killed_at(cfg, tmp_path / "cut")
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == 4
    summary = train(cfg, tmp_path / "cut", resume=True)
    assert summary["start_step"] == 4
    full = {r["step"]: r["loss"] for r in read_log(tmp_path / "full") if "loss" in r}
    cut = {r["step"]: r["loss"] for r in read_log(tmp_path / "cut") if "loss" in r}
    assert sorted(cut) == list(range(6))
    assert [cut[s] for s in (4, 5)] == [full[s] for s in (4, 5)]  # bit for bit
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_run_dir_rules(tmp_path):
    data = write_stacks(tmp_path / "data", count=1, h=20, w=24)
    cfg = tiny_config(data, steps=1, val_every=0)
    train(cfg, tmp_path / "run")
    with pytest.raises(OutputError, match="not empty"):
        train(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="different lr"):
        train(tiny_config(data, steps=2, val_every=0, lr=0.5), tmp_path / "run", resume=True)
    assert train(tiny_config(data, steps=2, val_every=0), tmp_path / "run", resume=True)["start_step"] == 1


def test_config_checks():
    with pytest.raises(ConfigError, match="steps must be >= 1"):
        TrainConfig(steps=0)
    with pytest.raises(ConfigError, match="frames_max"):
        TrainConfig(frames_min=5, frames_max=3)


def test_init_starts_from_exported_weights(tmp_path):
    from focalcli.errors import ModelFileError
    from focalcli.weights import export_model

    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    train(tiny_config(data, steps=2, val_every=0), tmp_path / "a")
    first = load_checkpoint(tmp_path / "a" / "last.pt")
    from focalcli.train.config import build_train_model

    model = build_train_model(tiny_config(data))
    model.load_state_dict(first["model"])
    export_model(model, tmp_path / "a.safetensors")
    train(tiny_config(data, steps=1, val_every=0, lr=1e-12, warmup_steps=0, init=str(tmp_path / "a.safetensors")),
          tmp_path / "b")
    after = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    # a step at lr 1e-12 leaves the initial weights (AdamW's first step is at most lr in size)
    assert all(torch.allclose(after[k], v, atol=1e-6) for k, v in first["model"].items())
    with pytest.raises(ModelFileError, match="differs"):
        train(tiny_config(data, steps=1, val_every=0, model="focusvolume", model_options={},
                          init=str(tmp_path / "a.safetensors")), tmp_path / "c")


def test_device_rendering_resumes_exactly_and_trains_what_workers_train(tmp_path):
    """render = device: the workers prepare synthetic samples and the training process renders each batch; a resumed
    run continues bit for bit, and the losses are those of rendering in the workers (the same samples)."""
    synth = {"shapes": 6, "render_method": "mixed", "eval_size": 24, "eval_items": 1, "eval_frames": 3,
             "image_width_px": [24.0, 32.0]}
    cfg = tiny_config(None, data=("procedural",), synth_options=synth, steps=4, save_every=2, val_every=0,
                      frames_min=2, frames_max=3, render="device")
    assert train(cfg, tmp_path / "full")["render"] == "device"

    def kill_at_2(step, loss):
        if step == 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(cfg, tmp_path / "cut", on_step=kill_at_2)
    assert train(cfg, tmp_path / "cut", resume=True)["start_step"] == 2
    full = {r["step"]: r["loss"] for r in read_log(tmp_path / "full") if "loss" in r}
    cut = {r["step"]: r["loss"] for r in read_log(tmp_path / "cut") if "loss" in r}
    assert [cut[s] for s in (2, 3)] == [full[s] for s in (2, 3)]  # bit for bit
    a, b = load_checkpoint(tmp_path / "full" / "last.pt"), load_checkpoint(tmp_path / "cut" / "last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # the first two steps (warm-up: their learning rates do not depend on the run's length) in the workers
    assert train(replace(cfg, render="workers", steps=2), tmp_path / "workers")["render"] == "workers"
    workers = [r["loss"] for r in read_log(tmp_path / "workers") if "loss" in r]
    assert workers == pytest.approx([full[0], full[1]], rel=1e-4)


def test_render_key():
    with pytest.raises(ConfigError, match="render must be"):
        TrainConfig(render="gpu")
    assert "render" in RUNTIME_KEYS  # resuming may switch: both modes render the same samples
