"""``train(cfg, run_dir)``: the whole training run, top to bottom.

One process::

    focal train --data procedural --data synth:../shared/data/rgbd --model focdepthformer-tiny --steps 2000 --out runs/a

Several GPUs (DDP, one process per GPU; ``--batch-size`` is the global batch)::

    torchrun --nproc_per_node 4 -m focalcli train --data ddff:ddff.h5 --model focdepthformer-small --out runs/b

DDP is on only when torchrun's ``RANK`` is set; rank 0 alone logs, validates and saves. The training sample at
(step, j) depends only on (seed, step, j) (``focalcli.train.mixture``) and the global RNG is reseeded from
(seed, step, rank) at every step, so ``--resume`` continues exactly where a killed run stopped.

Synthetic stacks (``synth:DIR``, ``procedural``) are rendered by the loader workers or, with ``render = "device"``
(the default on CUDA), on the training device: the workers only decode, crop and draw each sample's parameters, and
the batch is rendered in one call before the model step (``data.prepared``). Both give the same samples.

A run folder holds ``config.json`` (the resolved config), ``log.jsonl`` (one record per logged step and per
validation), ``last.pt`` and ``best.pt`` (resume checkpoints; ``focal export`` turns one into safetensors).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from focalcli.config import build_dataclass
from focalcli.data import build_source, collate_samples, is_prepared, parse_data_spec, render_prepared, sample_generator
from focalcli.errors import ConfigError, ModelFileError, OutputError
from focalcli.evaluation.evaluate import default_protocol, evaluate, model_predictor
from focalcli.io.atomic import atomic_path, check_output_tree
from focalcli.runtime import resolve_device, seed_everything
from focalcli.train.augment import AugmentOptions
from focalcli.train.checkpoint import (
    load_checkpoint,
    restore_training_state,
    run_folder_guard,
    save_checkpoint,
    unwrap_model,
)
from focalcli.train.config import RUNTIME_KEYS, TrainConfig, build_train_model
from focalcli.train.distributed import barrier, dist_info, init_distributed, shutdown_distributed
from focalcli.train.losses import frame_cross_entropy, get_loss
from focalcli.train.mixture import MixtureDataset, StepBatchSampler
from focalcli.train.schedule import lr_at
from focalcli.weights import load_model

__all__ = ["train"]

Progress = Callable[[int, int, dict], None]  # (steps done, total, {"loss", "lr", "samples_per_s"})


def _load_init(model: torch.nn.Module, path: str) -> None:
    """Initialise ``model`` from an exported file (``init``): same architecture and shapes, loaded strictly.

    Raises:
        ModelFileError: not a focal model file, or one of another architecture or size.
    """
    source = load_model(path)
    if source.config.to_dict() | {"name": ""} != model.config.to_dict() | {"name": ""}:
        raise ModelFileError(f"{path}: its model config differs from this run's ({model.config.name}); --init needs "
                             "the same architecture and sizes")
    model.load_state_dict(source.state_dict())


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest,
                              "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.99))


def _validation_sets(cfg: TrainConfig) -> list[tuple[str, object, str]]:
    specs = [parse_data_spec(s) for s in (cfg.val_data or cfg.data)]
    return [(str(s), build_source(s, train=False, synth_options=cfg.synth_options), default_protocol(s.kind))
            for s in specs]


@torch.no_grad()
def _validate(model, val_sets, cfg: TrainConfig, device) -> dict:
    """Score ``model`` on the validation sets exactly as ``focal eval`` scores a shipped model (working
    resolution ``cfg.max_size``, inverse-depth resizing: ``models.runner.ModelRunner``)."""
    was_training = model.training
    out = {}
    predictor = model_predictor(model, device, max_size=cfg.max_size, align="off")  # synthetic: aligned
    for name, source, protocol in val_sets:
        res = evaluate(source, predictor, protocol=protocol, limit=cfg.val_stacks or None)
        out[name] = {"protocol": protocol, **res.mean}
    model.train(was_training)
    return out


def _prepare_run_dir(run_dir: Path, cfg: TrainConfig, *, resume: bool, overwrite: bool):
    """Create or check the run folder; on resume return the checkpoint to continue from."""
    check_output_tree(run_dir)
    if resume:
        state = load_checkpoint(run_dir / "last.pt")
        saved = state["config"]
        changed = sorted(k for k in cfg.to_dict() if k not in RUNTIME_KEYS and saved.get(k) != cfg.to_dict()[k])
        if changed:
            raise ConfigError(f"{run_dir}: cannot resume with a different {', '.join(changed)} (only "
                              f"{', '.join(sorted(RUNTIME_KEYS))} may change)")
        return state
    if run_dir.exists() and any(run_dir.iterdir()) and not overwrite:
        raise OutputError(f"{run_dir}: not empty (use --resume to continue that run or --overwrite to start over)")
    run_dir.mkdir(parents=True, exist_ok=True)  # missing parents too (run_folder_guard removes them on failure)
    for name in ("log.jsonl", "last.pt", "best.pt"):
        (run_dir / name).unlink(missing_ok=True)
    return None


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """Drop records of steps >= ``step`` (written after the checkpoint a resumed run starts from)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by a process killed while writing it
        if isinstance(record, dict) and isinstance(record.get("step", 0), int) and record.get("step", 0) < step:
            keep.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def train(cfg: TrainConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: Progress | None = None, on_step: Callable[[int, float], None] | None = None,
          logger=None, on_phase: Callable[[str], None] | None = None) -> dict:
    """Train a model as ``cfg`` says, writing checkpoints and logs into ``run_dir``.

    A fresh run that fails (or is interrupted) before its first checkpoint removes what it wrote, so the corrected
    command can use the same folder; once ``last.pt`` exists the folder is a run to ``--resume``.

    Args:
        cfg: the resolved configuration.
        run_dir: the run folder (created; must be empty unless ``resume`` or ``overwrite``).
        resume: continue from ``run_dir/last.pt``.
        overwrite: start over in a non-empty ``run_dir``.
        progress: called on rank 0 after every step with ``(steps done, total, stats)``.
        on_step: called on every rank after every step with ``(step, loss)`` (tests use it to interrupt a run).
        logger: an object whose ``log(record)`` gets every ``log.jsonl`` record too (rank 0;
            ``focalcli.train.loggers``: TensorBoard, W&B); None for none.
        on_phase: called on rank 0 with ``"validating"`` before each validation and ``"training"`` after it.

    Returns:
        A summary: steps, final loss, best validation score (mean AbsRel over the validation sets), paths, seconds.

    Raises:
        ConfigError, InputError, OutputError, ModelFileError: bad config, data, run folder or checkpoint.
    """
    with run_folder_guard(Path(run_dir), resume=resume, main=dist_info().is_main):
        return _train(cfg, Path(run_dir), resume=resume, overwrite=overwrite, progress=progress, on_step=on_step,
                      logger=logger, on_phase=on_phase)


def _train(cfg: TrainConfig, run_dir: Path, *, resume: bool, overwrite: bool, progress: Progress | None,
           on_step: Callable[[int, float], None] | None, logger=None,
           on_phase: Callable[[str], None] | None = None) -> dict:
    # --- processes, devices, run folder
    info = dist_info()
    device = init_distributed(info, resolve_device(cfg.device))
    run_dir = Path(run_dir)
    state = _prepare_run_dir(run_dir, cfg, resume=resume, overwrite=overwrite) if info.is_main else None
    barrier(info)
    if resume and not info.is_main:
        state = _prepare_run_dir(run_dir, cfg, resume=True, overwrite=False)
    if info.is_main:
        with atomic_path(run_dir / "config.json") as tmp:
            tmp.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    seed_everything(cfg.seed, info.rank)

    # --- data
    specs = [parse_data_spec(s) for s in cfg.data]
    sources = [build_source(s, train=True, synth_options=cfg.synth_options) for s in specs]
    augment = build_dataclass(AugmentOptions, cfg.augment, where="augment")
    render = cfg.render if cfg.render != "auto" else ("device" if device.type == "cuda" else "workers")
    dataset = MixtureDataset(sources, [s.weight for s in specs], seed=cfg.seed, crop=(cfg.crop, cfg.crop),
                             n_frames=(cfg.frames_min, cfg.frames_max), augment=augment, render=render)
    val_sets = _validation_sets(cfg) if info.is_main else []

    # --- model, optimiser, state
    model = build_train_model(cfg)
    if cfg.init and state is None:
        _load_init(model, cfg.init)
    model = model.to(device)
    optimizer = _optimizer(model, cfg)
    start, best = 0, math.inf
    if state is not None:
        restore_training_state(state, model, optimizer, where=run_dir / "last.pt")
        start, best = int(state["step"]), (math.inf if state.get("best") is None else float(state["best"]))
        if info.is_main:
            _truncate_log(run_dir / "log.jsonl", start)
    if info.enabled:
        # find_unused_parameters: the fusion LSTM runs only where some token is activated (models.fusion), so a
        # rank whose batch activates none leaves its weights without a gradient.
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                        find_unused_parameters=True)
    model.train()
    loss_fn = get_loss(cfg.loss)
    loss_kw = {"alpha": cfg.alpha} if cfg.loss == "mse-laplacian" else {}
    use_amp = cfg.amp and device.type == "cuda" and torch.cuda.is_bf16_supported()
    loader = DataLoader(dataset, batch_sampler=StepBatchSampler(start, cfg.steps, cfg.batch_size, info.rank,
                                                                info.world_size),
                        num_workers=cfg.workers, pin_memory=device.type == "cuda", persistent_workers=False,
                        collate_fn=collate_samples)

    # --- the loop
    t_start, t_last, speed, loss_value = time.perf_counter(), time.perf_counter(), 0.0, float("nan")
    for step, batch in zip(range(start, cfg.steps), loader, strict=True):
        lr = lr_at(step, base_lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps, min_lr=cfg.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(int(sample_generator(cfg.seed, step, info.rank, 7).initial_seed()))  # dropout & co.
        if is_prepared(batch):  # synthetic samples the workers prepared (render = device): rendered here
            batch = render_prepared(batch, device)
        frames = batch["frames"].to(device, non_blocking=True)  # (B, N, 3, H, W)
        focus = batch["focus_distances_m"].to(device, non_blocking=True)  # (B, N)
        depth = batch["depth"].to(device, non_blocking=True)  # (B, 1, H, W)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            out = model(frames, focus, details=True)  # {"depth" (B, 1, H, W), "logits" (B, N, H, W), ...}
        loss = loss_fn(out, depth, **loss_kw)
        if cfg.frame_ce and out["logits"] is not None:
            bound = getattr(unwrap_model(model).config, "logit_bound", 0.0)
            loss = loss + cfg.frame_ce * frame_cross_entropy(out["logits"], depth, out["positions"], out["metric"],
                                                            logit_bound=bound)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
        optimizer.step()

        # --- bookkeeping (the loss is averaged over ranks for the log)
        reduced = loss.detach().clone()
        if info.enabled:
            torch.distributed.all_reduce(reduced)
            reduced /= info.world_size
        loss_value = float(reduced)
        if not math.isfinite(loss_value):
            raise ConfigError(f"step {step}: the loss is {loss_value}; lower --lr or check the data")
        now = time.perf_counter()
        rate = cfg.batch_size / max(now - t_last, 1e-9)  # samples per second over this step
        speed = rate if step == start else 0.9 * speed + 0.1 * rate
        t_last = now
        done = step + 1
        if info.is_main:
            if done % cfg.log_every == 0 or done == cfg.steps or done == start + 1:
                record = {"step": step, "loss": loss_value, "lr": lr, "samples_per_s": round(speed, 3),
                          "time_s": round(now - t_start, 3)}
                if done == start + 1:
                    record["render"] = render  # where synthetic stacks are rendered (auto resolved)
                if grad_norm is not None:
                    record["grad_norm"] = float(grad_norm)
                _append_log(run_dir / "log.jsonl", record)
                if logger is not None:
                    logger.log(record)
            if progress is not None:
                progress(done, cfg.steps, {"loss": loss_value, "lr": lr, "samples_per_s": speed})
            validate = done == cfg.steps or (cfg.val_every and done % cfg.val_every == 0)
            ckpt = {"model": model, "optimizer": optimizer, "config": cfg.to_dict(), "seed": cfg.seed}
            if validate and val_sets:
                if on_phase is not None:
                    on_phase("validating")
                scores = _validate(unwrap_model(model), val_sets, cfg, device)
                if on_phase is not None:
                    on_phase("training")
                score = sum(s["abs_rel"] for s in scores.values()) / len(scores)
                _append_log(run_dir / "log.jsonl", {"step": step, "val": scores, "val_abs_rel": score})
                if logger is not None:
                    logger.log({"step": step, "val": scores, "val_abs_rel": score})
                if score < best:
                    best = score
                    save_checkpoint(run_dir / "best.pt", step=done, best=best, **ckpt)
            if validate or done == cfg.steps or (cfg.save_every and done % cfg.save_every == 0):
                save_checkpoint(run_dir / "last.pt", step=done, best=None if math.isinf(best) else best, **ckpt)
        if on_step is not None:
            on_step(step, loss_value)
    barrier(info)
    shutdown_distributed(info)
    return {"steps": cfg.steps, "start_step": start, "loss": loss_value, "best_val_abs_rel": None if math.isinf(best)
            else best, "run_dir": str(run_dir), "seconds": round(time.perf_counter() - t_start, 2), "render": render,
            "last": str(run_dir / "last.pt"), "best": str(run_dir / "best.pt") if not math.isinf(best) else None}

