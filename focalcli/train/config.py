"""The training configuration: ``TrainConfig``, its strict loader and its layers -- without importing torch.

A run's config is resolved from layers, later ones winning: ``TrainConfig``'s defaults < the run's own
``config.json`` (``--resume``) < a ``--config`` TOML file < command-line flags (``resolve_config``). Each layer is
checked on its own, so an error names the file it comes from. ``focal train --help`` shows the defaults from the
dataclass itself (this module imports no torch); ``build_train_model`` builds the network a config names.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from focalcli.config import build_dataclass, load_toml
from focalcli.errors import ConfigError

__all__ = ["LOSS_NAMES", "RUNTIME_KEYS", "TrainConfig", "build_train_model", "config_from_dict", "read_run_config",
           "resolve_config"]

LOSS_NAMES = ("diopter-l1", "mse-laplacian", "silog-grad")  # the keys of train.losses.LOSSES (torch-free here)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (``focal train`` options or a TOML file with these keys)."""

    data: tuple[str, ...] = ("procedural",)  # training sources, KIND:PATH[:WEIGHT] (see focalcli.data)
    val_data: tuple[str, ...] = ()  # validation sets; () = the evaluation split of each training source
    model: str = "focusvolume"  # model preset (focal models lists them)
    model_options: dict = field(default_factory=dict)  # config fields overriding the preset's
    init: str = ""  # start from these weights (a .safetensors file from focal export of the same architecture)
    synth_options: dict = field(default_factory=dict)  # options of the on-the-fly synthetic sources
    augment: dict = field(default_factory=dict)  # training augmentation (train.augment.AugmentOptions)
    steps: int = 2000  # optimiser steps in all
    batch_size: int = 4  # global batch (split across DDP ranks)
    crop: int = 256  # training crop side, px (a window of a virtual image: see data.synthetic)
    frames_min: int = 2  # fewest frames per stack (drawn per step)
    frames_max: int = 16  # most frames per stack
    loss: str = "silog-grad"  # silog-grad (chosen by measurement), diopter-l1 (scale-fair L1) or mse-laplacian (paper)
    alpha: float = 0.2  # weight of the Laplacian-variance term (mse-laplacian)
    frame_ce: float = 0.2  # weight of the two-hot cross-entropy on the frame weights (soft-choice heads)
    lr: float = 3e-4  # peak learning rate (AdamW)
    min_lr: float = 3e-5  # learning rate at the end of the cosine decay
    warmup_steps: int = 100  # linear warm-up steps
    weight_decay: float = 0.05  # AdamW weight decay on matrices and kernels (not on biases and norms)
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    val_every: int = 200  # validate every K steps (and at the end); 0 = only at the end
    val_stacks: int = 16  # stacks scored per validation set
    save_every: int = 100  # write last.pt every K steps (and at every validation and the end)
    log_every: int = 10  # write a log.jsonl record every K steps
    workers: int = 2  # data-loader worker processes per rank
    render: str = "auto"  # synthetic stacks rendered by the loader workers or on the device; auto = device on CUDA
    seed: int = 0  # seeds model init, data and augmentation
    device: str = "auto"  # auto, cpu, cuda, cuda:K
    amp: bool = True  # bf16 autocast on CUDA devices that support it (CPU always runs float32)
    max_size: int = 512  # validation runs the model as focal predict does, at this working resolution

    def __post_init__(self):
        problems = [f"{k} must be >= 1" for k in ("steps", "batch_size", "crop", "frames_min", "log_every")
                    if getattr(self, k) < 1]
        problems += [f"{k} must be >= 0" for k in ("warmup_steps", "val_every", "save_every", "workers", "grad_clip",
                                                   "weight_decay", "val_stacks", "alpha", "frame_ce")
                     if getattr(self, k) < 0]
        if self.frames_max < self.frames_min:
            problems.append("frames_max must be >= frames_min")
        if not self.data:
            problems.append("give at least one training source (--data)")
        if self.loss not in LOSS_NAMES:
            problems.append(f"unknown loss {self.loss!r} (use {', '.join(LOSS_NAMES)})")
        if self.render not in ("auto", "workers", "device"):
            problems.append(f"render must be auto, workers or device, got {self.render!r}")
        if self.max_size < 32:
            problems.append("max_size must be >= 32")
        if not (self.lr > 0 and self.min_lr >= 0):
            problems.append("lr must be > 0 and min_lr >= 0")
        if problems:
            raise ConfigError("training config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


# Keys that may change when a run is resumed (they do not change what is trained). ``render`` is one: both modes
# render the same samples (to float rounding, like ``device``; tests/test_train_data_prepared.py).
RUNTIME_KEYS = frozenset({"steps", "val_every", "val_stacks", "save_every", "log_every", "workers", "device",
                          "render"})
def build_train_model(cfg: TrainConfig):
    """A fresh model as ``cfg`` names it: the preset ``cfg.model`` with ``cfg.model_options`` applied."""
    from focalcli.models.build import build_model
    from focalcli.models.config import config_from_dict as model_config_from_dict
    from focalcli.models.config import get_config
    from focalcli.weights import check_model_size

    config = get_config(cfg.model)
    if cfg.model_options:
        config = model_config_from_dict({**config.to_dict(), **cfg.model_options}, where="model_options")
    check_model_size(lambda: build_model(config), f"model {cfg.model}")  # before anything is allocated
    return build_model(config)


def config_from_dict(*layers: dict, where: str = "training config") -> TrainConfig:
    """A ``TrainConfig`` from dict layers (later wins); unknown keys and wrong types raise ``ConfigError``."""
    return build_dataclass(TrainConfig, *layers, where=where)


def read_run_config(path: str | Path) -> dict:
    """The ``config.json`` of a run folder (``--resume``).

    Raises:
        ConfigError: unreadable, not JSON, or not a JSON object.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable run config ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object of TrainConfig keys")
    return raw


def resolve_config(flags: dict, *, config_file: str | Path | None = None, run_dir: str | Path | None = None,
                   resume: bool = False) -> TrainConfig:
    """The run's ``TrainConfig`` from its layers: defaults < ``run_dir/config.json`` (when ``resume`` and it
    exists) < ``config_file`` (TOML) < ``flags`` (keys whose value is None are not given).

    Raises:
        ConfigError: a layer with an unknown key, a wrong type or a bad value (naming the layer).
    """
    layers = []
    if resume and run_dir is not None and (Path(run_dir) / "config.json").is_file():
        layers.append((read_run_config(Path(run_dir) / "config.json"), str(Path(run_dir) / "config.json")))
    if config_file is not None:
        layers.append((load_toml(config_file), str(config_file)))
    layers.append(({k: v for k, v in flags.items() if v is not None}, "options"))
    cfg = TrainConfig()
    for i in range(len(layers)):  # each layer is checked on its own so errors name the file they come from
        cfg = config_from_dict(*(lay for lay, _ in layers[: i + 1]), where=layers[i][1])
    return cfg
