"""``focal train``: train a depth-from-focus model; ``torchrun --nproc_per_node K -m focalcli train ...`` for DDP."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import json_option, overwrite_option


def train(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: config.json, log.jsonl, last.pt, best.pt."),
    data: list[str] | None = typer.Option(None, "--data", help="Training source KIND:PATH[:WEIGHT], repeatable: "
                                          "synth:RGBD_DIR, procedural, ddff:FILE.h5, fod500:DIR, stacks:DIR."),
    val_data: list[str] | None = typer.Option(None, "--val-data", help="Validation set (same forms), repeatable; "
                                              "default: the evaluation split of each --data source."),
    model: str | None = typer.Option(None, "--model", help="Model preset (focal models lists them)."),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Optimiser steps in all."),
    batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Global batch size."),
    crop: int | None = typer.Option(None, "--crop", min=8, help="Training crop side (px)."),
    lr: float | None = typer.Option(None, "--lr", min=0.0, help="Peak learning rate."),
    loss: str | None = typer.Option(None, "--loss", help="mse-laplacian (the paper's) or silog-grad."),
    val_every: int | None = typer.Option(None, "--val-every", min=0, help="Validate every K steps (0: at the end)."),
    workers: int | None = typer.Option(None, "--workers", min=0, help="Data-loader processes per rank."),
    render: str | None = typer.Option(None, "--render", help="Where synthetic stacks are rendered: workers (CPU "
                                      "loader processes), device (the training device, batched) or auto (device "
                                      "on CUDA)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of model init, data and augmentation."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:K."),
    config: Path | None = typer.Option(None, "--config", help="TOML file with TrainConfig keys (flags win)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Train a FocDepthFormer on real and/or synthetic focal stacks (defaults < run's config on --resume < --config
    < flags)."""
    from focalcli.config import load_toml
    from focalcli.train.distributed import dist_info
    from focalcli.train.loop import config_from_dict
    from focalcli.train.loop import train as run

    if resume and overwrite:
        raise typer.BadParameter("use --resume or --overwrite, not both", param_hint="--resume")
    layers = []
    if resume and (out / "config.json").is_file():
        layers.append((_read_run_config(out / "config.json"), f"{out / 'config.json'}"))
    if config is not None:
        layers.append((load_toml(config), str(config)))
    flags = {"data": data or None, "val_data": val_data or None, "model": model, "steps": steps,
             "batch_size": batch_size, "crop": crop, "lr": lr, "loss": loss, "val_every": val_every,
             "workers": workers, "render": render, "seed": seed, "device": device}
    layers.append(({k: v for k, v in flags.items() if v is not None}, "options"))
    cfg = None
    for i in range(len(layers)):  # each layer is checked on its own so errors name the file they come from
        cfg = config_from_dict(*(lay for lay, _ in layers[: i + 1]), where=layers[i][1])
    main = dist_info().is_main
    header = f"training {cfg.model} for {cfg.steps} steps on {', '.join(cfg.data)} -> {out}"
    with _bar(cfg.steps, enabled=main, header=header) as update:
        summary = run(cfg, out, resume=resume, overwrite=overwrite, progress=update)
    if main:
        best = summary["best_val_abs_rel"]
        con.info(f"done: final loss {summary['loss']:.4g}" + (f", best validation AbsRel {best:.4g}" if best else "")
                 + f"; checkpoints in {out} (focal export {out / 'best.pt'} -o model.safetensors)")
        if as_json:
            con.print_json(summary)


def _read_run_config(path: Path) -> dict:
    """The ``config.json`` of a run folder (``--resume``).

    Raises:
        ConfigError: unreadable, not JSON, or not a JSON object.
    """
    import json

    from focalcli.errors import ConfigError

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable run config ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object of TrainConfig keys")
    return raw


def _bar(total: int, *, enabled: bool, header: str):
    """The training progress bar (stderr, only on a terminal and without -q); ``header`` is printed once the first
    step is done, so that an error before it stays the only line."""
    from contextlib import contextmanager

    from rich import progress as rp

    @contextmanager
    def bar():
        columns = (rp.TextColumn("[bold]train"), rp.BarColumn(), rp.MofNCompleteColumn(),
                   rp.TextColumn("loss {task.fields[loss]}"), rp.TextColumn("{task.fields[speed]} samples/s"),
                   rp.TimeElapsedColumn(), rp.TextColumn("ETA"), rp.TimeRemainingColumn())
        hidden = not enabled or con.verbosity() < 0 or not con.console.is_terminal
        shown = []
        with rp.Progress(*columns, console=con.console, disable=hidden, transient=True) as p:
            task = p.add_task("train", total=total, loss="-", speed="-")

            def update(done: int, total: int, stats: dict) -> None:
                if enabled and not shown:
                    con.info(header)
                    shown.append(True)
                p.update(task, completed=done, loss=f"{stats['loss']:.4g}", speed=f"{stats['samples_per_s']:.1f}")

            yield update

    return bar()


def register(app: typer.Typer) -> None:
    app.command("train")(train)
