"""Training loggers beside log.jsonl (TensorBoard event files, W&B), the 'validating' phase, and run folders that
check their sources first and create (and on failure remove) missing parent folders."""

from __future__ import annotations

import sys
import types

import pytest
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.errors import ConfigError
from focalcli.train.loggers import (
    EventFileWriter,
    TensorBoardLogger,
    WandbLogger,
    crc32c,
    make_logger,
    read_event_scalars,
    scalars,
)
from focalcli.train.loop import train
from tests.datasets_tiny import write_stacks
from tests.train_tiny import read_log, tiny_config


def test_crc32c_check_value():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C


def test_scalars_of_log_records():
    assert scalars({"step": 3, "loss": 0.5, "lr": 1e-3, "grad_norm": 2}) == {"train/loss": 0.5, "train/lr": 1e-3,
                                                                            "train/grad_norm": 2.0}
    val = {"step": 9, "val": {"procedural": {"protocol": "metric", "abs_rel": 0.2}}, "val_abs_rel": 0.2}
    assert scalars(val) == {"val/procedural/abs_rel": 0.2, "val/abs_rel": 0.2}


def test_event_file_round_trip(tmp_path):
    writer = EventFileWriter(tmp_path)
    writer.add_scalars(0, {"train/loss": 1.5, "train/lr": float("nan")})  # non-finite values are left out
    writer.add_scalars(7, {"train/loss": 0.25, "val/abs_rel": 0.5})
    writer.close()
    assert writer.path.name.startswith("events.out.tfevents.")
    assert read_event_scalars(writer.path) == [(0, "train/loss", 1.5), (7, "train/loss", 0.25),
                                               (7, "val/abs_rel", 0.5)]
    data = bytearray(writer.path.read_bytes())
    data[-6] ^= 0xFF  # a flipped bit in the last record fails its CRC
    writer.path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC"):
        read_event_scalars(writer.path)


def test_train_logs_to_tensorboard_and_announces_validation(tmp_path):
    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    run = tmp_path / "runs" / "deep" / "a"  # missing parent folders are created
    phases = []
    logger = TensorBoardLogger(tmp_path)  # any object with log(record)
    train(tiny_config(data, steps=2, val_every=2), run, logger=logger, on_phase=phases.append)
    logger.close()
    assert phases == ["validating", "training"]
    (events,) = tmp_path.glob("events.out.tfevents.*")
    got = read_event_scalars(events)
    log = read_log(run)
    assert [(s, v) for s, tag, v in got if tag == "train/loss"] == [(r["step"], pytest.approx(r["loss"]))
                                                                     for r in log if "loss" in r]
    assert any(tag.startswith("val/") and tag.endswith("/abs_rel") for _, tag, _ in got)


def test_a_run_that_fails_early_removes_the_folders_it_made(tmp_path):
    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)

    def stop(step, loss):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(data, steps=3), tmp_path / "runs" / "deep" / "a", on_step=stop)
    assert not (tmp_path / "runs").exists()


def test_cli_checks_every_source_before_making_the_run_folder(tmp_path):
    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    out = tmp_path / "runs" / "tiny"
    r = CliRunner().invoke(app, ["train", "--data", f"stacks:{data}", "--val-data", f"stacks:{tmp_path / 'nope'}",
                                 "--out", str(out), "--steps", "1"])
    assert r.exit_code == 3 and "nope" in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()  # so the corrected command finds no half-made run


def test_wandb_logger_with_a_stand_in_module(tmp_path, monkeypatch):
    calls = []

    class Run:
        def log(self, values, step):
            calls.append(("log", values, step))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or Run())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = make_logger(["wandb"], tmp_path, {"steps": 2})
    logger.log({"step": 1, "loss": 0.5})
    logger.close()
    assert calls[0][0] == "init" and calls[0][1]["dir"] == str(tmp_path) and calls[0][1]["config"] == {"steps": 2}
    assert calls[1] == ("log", {"train/loss": 0.5}, 1) and calls[2] == ("finish",)


def test_wandb_missing_is_one_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(ConfigError, match="pip install wandb"):
        WandbLogger(tmp_path)
    with pytest.raises(ConfigError, match="unknown logger"):
        make_logger(["mlflow"], tmp_path)
