"""A training run that fails before its first checkpoint leaves nothing; a run with one stays resumable, even with
a log line torn by a kill."""

from __future__ import annotations

import json

import pytest

from focalcli.train.checkpoint import load_checkpoint
from focalcli.train.loop import train
from tests.datasets_tiny import write_stacks
from tests.train_tiny import tiny_config


def _interrupt_at(n):
    def on_step(step, loss):
        if step == n:
            raise KeyboardInterrupt

    return on_step


def test_run_folder_after_failures_and_a_torn_log(tmp_path):
    data = write_stacks(tmp_path / "data", count=1, h=20, w=24)
    cfg = tiny_config(data, steps=3, save_every=2, val_every=0, log_every=1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run", on_step=_interrupt_at(0))  # before the first checkpoint
    assert not (tmp_path / "run").exists()

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "mine", on_step=_interrupt_at(1), overwrite=True)  # after the checkpoint of step 2
    run = tmp_path / "mine"
    assert load_checkpoint(run / "last.pt")["step"] == 2 and (run / "notes.txt").read_text() == "kept"

    log = run / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 2, "lo')  # killed while writing a record
    assert train(cfg, run, resume=True)["start_step"] == 2
    assert [r["step"] for r in map(json.loads, log.read_text().splitlines()) if "loss" in r] == [0, 1, 2]
