"""``focal train``: train a depth-from-focus model; ``torchrun --nproc_per_node K -m focalcli train ...`` for DDP."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.choices import LogBackend, Loss
from focalcli.cli.options import json_option, overwrite_option
from focalcli.train.config import TrainConfig  # no torch: --help stays fast

_DEFAULTS = TrainConfig()


def _default(key: str) -> str:
    """What --help shows as an option's default: TrainConfig's own (the flag itself defaults to "not given", so that
    a --config file or a resumed run's config.json can set it)."""
    value = getattr(_DEFAULTS, key)
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, log.jsonl, last.pt, best.pt "
                             "(missing parent folders are created)."),
    data: list[str] | None = typer.Option(None, "--data", help="Training source KIND:PATH[:WEIGHT], repeatable: "
                                          "synth:RGBD_DIR, procedural, ddff:FILE.h5, fod500:DIR, stacks:DIR.",
                                          show_default=_default("data")),
    val_data: list[str] | None = typer.Option(None, "--val-data", help="Validation set (same forms), repeatable.",
                                              show_default="the evaluation split of each --data source"),
    model: str | None = typer.Option(None, "--model", help="Model preset (focal models lists them).",
                                     show_default=_default("model")),
    init: Path | None = typer.Option(None, "--init", help="Start from these weights (.safetensors from focal export, "
                                     "same architecture): fine-tune instead of training from scratch.",
                                     show_default="none: from scratch"),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Optimiser steps in all.",
                                     show_default=_default("steps")),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Global batch size.",
                                          show_default=_default("batch_size")),
    crop: int | None = typer.Option(None, "--crop", min=8, help="Training crop side (px).",
                                    show_default=_default("crop")),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="Peak learning rate.", show_default=_default("lr")),
    loss: Loss | None = typer.Option(None, "--loss", help="Training loss (mse-laplacian is the paper's).",
                                     show_default=_default("loss")),
    val_every: int | None = typer.Option(None, "--val-every", min=0, help="Validate every K steps (0: at the end).",
                                         show_default=_default("val_every")),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Data-loader processes per rank.",
                                       show_default=_default("workers")),
    render: str | None = typer.Option(None, "--render", help="Where synthetic stacks are rendered: workers (CPU "
                                      "loader processes), device (the training device, batched) or auto (device "
                                      "on CUDA).", show_default=_default("render")),
    seed: int | None = typer.Option(None, "--seed", help="Seed of model init, data and augmentation.",
                                    show_default=_default("seed")),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:K.",
                                      show_default=_default("device")),
    config: Path | None = typer.Option(None, "--config", help="TOML file with TrainConfig keys (flags win)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    log: list[LogBackend] | None = typer.Option(None, "--log", help="Also log to TensorBoard event files in the run "
                                                "folder (tensorboard --logdir RUN) or to Weights & Biases (needs the "
                                                "wandb package); repeatable.", show_default="log.jsonl only"),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Train a FocDepthFormer on real and/or synthetic focal stacks (defaults < run's config on --resume < --config
    < flags)."""
    from focalcli.train.config import resolve_config
    from focalcli.train.distributed import dist_info
    from focalcli.train.loop import train as run

    if resume and overwrite:
        raise typer.BadParameter("use --resume or --overwrite, not both", param_hint="--resume")
    flags = {"data": data or None, "val_data": val_data or None, "model": model, "init": str(init) if init else None,
             "steps": steps, "batch_size": batch_size, "crop": crop, "lr": lr, "loss": loss.value if loss else None,
             "val_every": val_every,
             "workers": workers, "render": render, "seed": seed, "device": device}
    cfg = resolve_config(flags, config_file=config, run_dir=out, resume=resume)
    main = dist_info().is_main
    _check_sources(cfg)  # every data source, before the run folder is made
    header = f"training {cfg.model} for {cfg.steps} steps on {', '.join(cfg.data)} -> {out}"
    with _bar(cfg.steps, enabled=main, header=header) as update, _loggers(log, out, cfg, main) as logger:
        summary = run(cfg, out, resume=resume, overwrite=overwrite, progress=update, logger=logger,
                      on_phase=update.phase)
    if main:
        best = summary["best_val_abs_rel"]
        con.info(f"done: final loss {summary['loss']:.4g}" + (f", best validation AbsRel {best:.4g}" if best else "")
                 + f"; checkpoints in {out} (focal export {out / 'best.pt'} -o model.safetensors)")
        if as_json:
            con.print_json(summary)


def _check_sources(cfg) -> None:
    """Open every training and validation source once (cheap: file lists and headers), so that a bad ``--data``
    fails before the run folder exists.

    Raises:
        ConfigError, InputError: a bad source.
    """
    from focalcli.data import build_source, parse_data_spec

    for spec in cfg.data:
        build_source(parse_data_spec(spec), train=True, synth_options=cfg.synth_options)
    for spec in cfg.val_data or cfg.data:
        build_source(parse_data_spec(spec), train=False, synth_options=cfg.synth_options)


def _loggers(backends, out: Path, cfg, main: bool):
    """The ``--log`` loggers (rank 0 only), created once the run folder exists: a small object that makes them on
    the first record, so that a run that fails early leaves no logger files behind."""
    from contextlib import contextmanager

    @contextmanager
    def scope():
        if not backends or not main:
            yield None
            return
        from focalcli.train.loggers import make_logger

        names = [b.value for b in backends]
        if "wandb" in names:  # fail before training when the package is missing
            import importlib.util

            if importlib.util.find_spec("wandb") is None:
                from focalcli.errors import ConfigError

                raise ConfigError("--log wandb needs the wandb package: pip install wandb (WANDB_MODE=offline works "
                                  "without a network)")
        lazy = _LazyLogger(lambda: make_logger(names, out, cfg.to_dict()))
        try:
            yield lazy
        finally:
            lazy.close()

    return scope()


class _LazyLogger:
    def __init__(self, make):
        self.make, self.logger = make, None

    def log(self, record: dict) -> None:
        if self.logger is None:
            self.logger = self.make()
        self.logger.log(record)

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()


def _bar(total: int, *, enabled: bool, header: str):
    """The training progress bar (stderr, only on a terminal and without -q); ``header`` is printed once the first
    step is done, so that an error before it stays the only line."""
    from contextlib import contextmanager

    from rich import progress as rp

    @contextmanager
    def bar():
        columns = (rp.TextColumn("[bold]{task.fields[label]}"), rp.BarColumn(), rp.MofNCompleteColumn(),
                   rp.TextColumn("loss {task.fields[loss]}"), rp.TextColumn("{task.fields[speed]} samples/s"),
                   rp.TimeElapsedColumn(), rp.TextColumn("ETA"), rp.TimeRemainingColumn())
        hidden = not enabled or con.verbosity() < 0 or not con.console.is_terminal
        shown = []
        with rp.Progress(*columns, console=con.rich_console(), disable=hidden, transient=True) as p:
            task = p.add_task("train", total=total, loss="-", speed="-", label="train")

            def update(done: int, total: int, stats: dict) -> None:
                if enabled and not shown:
                    con.info(header)
                    shown.append(True)
                p.update(task, completed=done, loss=f"{stats['loss']:.4g}", speed=f"{stats['samples_per_s']:.1f}")

            def phase(name: str) -> None:
                p.update(task, label="validating" if name == "validating" else "train")
                con.debug(name)

            update.phase = phase
            yield update

    return bar()


def register(app: typer.Typer) -> None:
    app.command("train")(train)
