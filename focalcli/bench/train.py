"""``python -m focalcli.bench train``: training throughput on this machine, with training data rendered by CPU
workers or on the training device.

Figures (samples per second; one process, so a CPU rate is what one loader worker delivers):

- ``data_samples_per_s``: the training source (``--data``) drawn and rendered on the CPU, as a loader worker does.
- ``prepare_samples_per_s``: the CPU half of on-device rendering: a dead-leaves scene of the crop size and its
  random ``SampleParams`` (what a worker does when the GPU renders).
- ``device_render_samples_per_s``: ``synth.batch.render_batch`` of a whole batch on ``--device``.
- ``train_samples_per_s``: training steps alone (forward, backward, AdamW; bf16 autocast on CUDA).
- ``device_pipeline_samples_per_s``: measured steps that render their batch on the device first (the GPU does
  both; CPU workers only prepare).
- ``cpu_workers_needed``: CPU workers that would keep each pipeline fed (``workers_for_cpu_rendering`` for the
  CPU-rendered one at the model step's rate; ``workers_for_device_rendering`` for the on-device one).

``--virtual-width`` sets the pixel pitch of the on-device samples from a wider virtual image (36 mm sensor / width),
for realistic blur on a small crop (0: the crop's width, as today's training stacks). Example (GPU)::

    python -m focalcli.bench train --device cuda --model focdepthformer-small --crop 256 --batch-size 16 --frames 8 \
        --virtual-width 1024 --cpu-samples 16
"""

from __future__ import annotations

import typer


def _prepare(seed: int, crop: int, frames: int, virtual_width: int):
    """One sample's CPU half: a dead-leaves scene and its parameters (pixel pitch from the virtual width)."""
    from dataclasses import replace

    import torch

    from focalcli.synth.procedural import dead_leaves
    from focalcli.synth.sampling import SamplingRanges, sample_params

    g = torch.Generator().manual_seed(seed)
    rgb, depth = dead_leaves(g, crop, crop)
    params = sample_params(g, depth, replace(SamplingRanges(), frames=(frames, frames), crop=None))
    if virtual_width:
        camera = replace(params.camera, pixel_pitch_um=params.camera.pixel_pitch_um * crop / virtual_width)
        params = replace(params, camera=camera)
    return rgb, depth, params


def bench_train(
    model: str = typer.Option("focdepthformer-tiny", "--model", help="Model preset."),
    data: str = typer.Option("procedural", "--data", help="Training source KIND:PATH (rendered on the fly)."),
    crop: int = typer.Option(128, "--crop", help="Crop side (px)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Batch size."),
    frames: int = typer.Option(5, "--frames", help="Frames per stack."),
    steps: int = typer.Option(5, "--steps", help="Timed steps (after one warm-up step)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:K."),
    virtual_width: int = typer.Option(0, "--virtual-width", min=0, help="On-device samples: width (px) of the "
                                      "virtual image that sets the pixel pitch (0: the crop)."),
    render: str = typer.Option("both", "--render", help="Pipelines to time: cpu, device or both."),
    cpu_samples: int = typer.Option(0, "--cpu-samples", min=0, help="Samples rendered on the CPU for its rate "
                                    "(0: every batch's; with --render both, the steps use the device's batches)."),
) -> None:
    """Samples per second of the data pipelines (CPU-rendered, device-rendered) and of full training steps."""
    import json
    import statistics
    import time

    import torch

    from focalcli.runtime import device_errors, resolve_device, sync
    from focalcli.synth.batch import render_batch
    from focalcli.train.data import MixtureDataset, build_source, parse_data_spec
    from focalcli.train.loop import TrainConfig, build_train_model
    from focalcli.train.losses import get_loss

    if render not in ("cpu", "device", "both"):
        raise typer.BadParameter("use cpu, device or both", param_hint="--render")
    dev = resolve_device(device)
    out = {"model": model, "data": data, "crop": crop, "batch_size": batch_size, "frames": frames, "device": str(dev),
           "threads": torch.get_num_threads(), "virtual_width": virtual_width or crop}
    n_batches = steps + 1

    batches = []
    if render in ("cpu", "both"):
        ds = MixtureDataset([build_source(parse_data_spec(data), train=True)], [1.0], seed=0, crop=(crop, crop),
                            n_frames=(frames, frames))
        count = cpu_samples or n_batches * batch_size
        t = time.perf_counter()
        samples = [ds[(i // batch_size, i % batch_size)] for i in range(count)]
        out["data_samples_per_s"] = round(count / (time.perf_counter() - t), 2)
        if render == "cpu" or not cpu_samples:
            batches = [torch.utils.data.default_collate(samples[i : i + batch_size])
                       for i in range(0, len(samples) - batch_size + 1, batch_size)]
    prepared = []
    if render in ("device", "both"):
        t = time.perf_counter()
        prepared = [[_prepare(s * batch_size + j, crop, frames, virtual_width) for j in range(batch_size)]
                    for s in range(n_batches)]
        out["prepare_samples_per_s"] = round(n_batches * batch_size / (time.perf_counter() - t), 2)

    net = build_train_model(TrainConfig(model=model)).to(dev).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn = get_loss("mse-laplacian")
    use_amp = dev.type == "cuda" and torch.cuda.is_bf16_supported()

    def step(frames_, focus, depth):
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = net(frames_, focus, validate=False)
        loss = loss_fn(pred.float(), depth)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def rendered(group, seed):
        rgb = torch.stack([r for r, _, _ in group]).to(dev, non_blocking=True)  # (B, 3, H, W)
        depth = torch.stack([d for _, d, _ in group]).to(dev, non_blocking=True)  # (B, 1, H, W)
        seeds = torch.arange(seed, seed + len(group))
        frames_, focus = render_batch(rgb, depth, [p for _, _, p in group], noise_seed=seeds)
        return frames_, focus, torch.where(depth > 0, depth, torch.zeros_like(depth))

    def timed(fn, items):
        """Median seconds of ``fn(item)`` over all items but the first (warm-up)."""
        times = []
        for item in items:
            sync(dev)
            t = time.perf_counter()
            fn(item)
            sync(dev)
            times.append(time.perf_counter() - t)
        return statistics.median(times[1:]) if len(times) > 1 else times[0]

    with device_errors(dev):
        if batches:
            step_s = timed(lambda b: step(b["frames"].to(dev), b["focus_distances_m"].to(dev), b["depth"].to(dev)),
                           batches)
            out["step_s"] = round(step_s, 4)
            out["train_samples_per_s"] = round(batch_size / step_s, 2)
        if prepared:
            render_s = timed(lambda g: rendered(g, 0), prepared)
            if not batches:  # the model step alone, on batches rendered beforehand on the device
                ready = [rendered(g, 0) for g in prepared]
                step_s = timed(lambda b: step(*b), ready)
                out["step_s"] = round(step_s, 4)
                out["train_samples_per_s"] = round(batch_size / step_s, 2)
                del ready
            both_s = timed(lambda g: step(*rendered(g, 0)), prepared)
            out["device_render_samples_per_s"] = round(batch_size / render_s, 2)
            out["device_pipeline_samples_per_s"] = round(batch_size / both_s, 2)
            out["workers_for_device_rendering"] = round(out["device_pipeline_samples_per_s"] /
                                                        out["prepare_samples_per_s"], 1)
    if "data_samples_per_s" in out and "train_samples_per_s" in out:
        out["workers_for_cpu_rendering"] = round(out["train_samples_per_s"] / out["data_samples_per_s"], 1)
    print(json.dumps(out, indent=2))


def register(app: typer.Typer) -> None:
    app.command("train")(bench_train)
