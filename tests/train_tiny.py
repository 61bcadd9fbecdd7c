"""A tiny training config and the run log reader, shared by the training tests."""

import json

from focalcli.train.config import TrainConfig

TINY = {"image_size": 64, "width": 32, "depth": 4, "hooks": [1, 2, 3, 4], "heads": 2, "lstm_hidden": 32,
        "lstm_layers": 1, "decoder_channels": [8, 16, 16, 32], "decoder_features": 16, "stem_branch": 8,
        "stem_mid": 16, "stem_out": 8, "key_channels": 8}


def tiny_config(data_dir, **kw) -> TrainConfig:
    base = {"data": (f"stacks:{data_dir}",), "model": "focdepthformer-tiny", "model_options": TINY, "steps": 20,
            "batch_size": 2, "crop": 16, "warmup_steps": 2, "lr": 1e-3, "val_every": 10, "val_stacks": 1,
            "save_every": 5, "log_every": 1, "workers": 0, "device": "cpu", "seed": 3}
    return TrainConfig(**{**base, **kw})


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


class Killed(Exception):
    """Stands in for the process being killed mid-run."""


def train_killed_at(cfg: TrainConfig, run_dir, step: int = 3) -> None:
    """Run ``train`` until the end of ``step``, then stop it as a kill would (no clean-up, no final checkpoint)."""
    import pytest

    from focalcli.train.loop import train

    def kill(at, loss):
        if at == step:
            raise Killed

    with pytest.raises(Killed):
        train(cfg, run_dir, on_step=kill)
