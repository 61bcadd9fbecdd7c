"""A training run that fails before its first checkpoint leaves nothing; a run with one stays resumable."""

from __future__ import annotations

import json

import pytest

from focalcli.train.checkpoint import load_checkpoint
from focalcli.train.loop import train
from tests.datasets_tiny import write_stacks
from tests.test_train_loop import tiny_config


def _interrupt_at(n):
    def on_step(step, loss):
        if step == n:
            raise KeyboardInterrupt

    return on_step


def test_a_fresh_run_failing_before_its_first_checkpoint_is_removed(tmp_path):
    data = write_stacks(tmp_path / "data", count=1, h=20, w=24)
    cfg = tiny_config(data, steps=5, save_every=3, val_every=0)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", on_step=_interrupt_at(1))
    assert not (tmp_path / "run").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "mine", on_step=_interrupt_at(1), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]  # only what the run made goes
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", on_step=_interrupt_at(3))  # after the checkpoint of step 3
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 3


def test_resume_tolerates_a_torn_last_log_line(tmp_path):
    data = write_stacks(tmp_path / "data", count=1, h=20, w=24)
    cfg = tiny_config(data, steps=3, save_every=1, val_every=0, log_every=1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", on_step=_interrupt_at(0))  # after the checkpoint of step 1
    log = tmp_path / "run" / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 1, "lo')  # killed while writing a record
    assert train(cfg, tmp_path / "run", resume=True)["start_step"] == 1
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [0, 1, 2]
