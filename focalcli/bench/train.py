"""``python -m focalcli.bench train``: training throughput on this machine (data rendering and optimiser steps)."""

from __future__ import annotations

import typer


def bench_train(
    model: str = typer.Option("focdepthformer-tiny", "--model", help="Model preset."),
    data: str = typer.Option("procedural", "--data", help="Training source KIND:PATH (rendered on the fly)."),
    crop: int = typer.Option(128, "--crop", help="Crop side (px)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Batch size."),
    frames: int = typer.Option(5, "--frames", help="Frames per stack."),
    steps: int = typer.Option(5, "--steps", help="Timed steps (after one warm-up step)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:K."),
) -> None:
    """Samples per second of the data pipeline alone, and of full training steps (forward, backward, AdamW)."""
    import json
    import time

    import torch

    from focalcli.runtime import resolve_device
    from focalcli.train.data import MixtureDataset, build_source, parse_data_spec
    from focalcli.train.loop import TrainConfig, build_train_model
    from focalcli.train.losses import get_loss

    dev = resolve_device(device)
    ds = MixtureDataset([build_source(parse_data_spec(data), train=True)], [1.0], seed=0, crop=(crop, crop),
                        n_frames=(frames, frames))
    t = time.perf_counter()
    batches = [torch.utils.data.default_collate([ds[(s, j)] for j in range(batch_size)]) for s in range(steps + 1)]
    data_rate = (steps + 1) * batch_size / (time.perf_counter() - t)
    net = build_train_model(TrainConfig(model=model)).to(dev).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn = get_loss("mse-laplacian")
    use_amp = dev.type == "cuda" and torch.cuda.is_bf16_supported()
    times = []
    for b in batches:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = net(b["frames"].to(dev), b["focus_distances_m"].to(dev))
        loss = loss_fn(pred.float(), b["depth"].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    step_s = sum(times[1:]) / max(1, len(times) - 1)
    print(json.dumps({"model": model, "data": data, "crop": crop, "batch_size": batch_size, "frames": frames,
                      "device": str(dev), "threads": torch.get_num_threads(), "data_samples_per_s": round(data_rate, 2),
                      "step_s": round(step_s, 3), "train_samples_per_s": round(batch_size / step_s, 2)}, indent=2))


def register(app: typer.Typer) -> None:
    app.command("train")(bench_train)
