"""``python -m focalcli.bench train``: training throughput on this machine, with synthetic training data rendered by
the CPU loader workers or on the training device (``TrainConfig.render``).

Both pipelines are the training ones: ``train.mixture.MixtureDataset`` with the training augmentation (rotations,
flips, sensor noise, 8 bits), one source (``--data``), and the same samples in either mode. Figures (samples per
second; one process, so a CPU rate is what one loader worker delivers):

- ``data_samples_per_s``: ``render = workers``: a sample drawn, augmented and rendered on the CPU.
- ``prepare_samples_per_s``: ``render = device``, the workers' half: a scene decoded, cropped, augmented and its
  ``SampleParams`` drawn (synthetic sources only).
- ``device_render_samples_per_s``: the device's half, ``data.render_prepared`` of a whole batch on ``--device``.
- ``train_samples_per_s``: training steps alone (forward, backward, AdamW; bf16 autocast on CUDA).
- ``device_pipeline_samples_per_s``: steps that render their batch on the device first (``render = device``: the
  device does both; CPU workers only prepare).
- ``workers_for_cpu_rendering`` / ``workers_for_device_rendering``: CPU workers that would keep each pipeline fed
  (the model step's rate over one worker's rate; the device pipeline's rate over one worker's preparation rate).

``--virtual-width`` fixes the width of the virtual image a crop is a window of (the pixel pitch is the sensor width
over it, which sets the blur in pixels); 0 draws it as training does (``synth_options.image_width_px``). Example::

    python -m focalcli.bench train --device cuda --model focdepthformer-small --crop 256 --batch-size 16 --frames 8 \\
        --virtual-width 1024 --cpu-samples 16
"""

from __future__ import annotations

import typer


def bench_train(
    model: str = typer.Option("focdepthformer-tiny", "--model", help="Model preset."),
    data: str = typer.Option("procedural", "--data", help="Training source KIND:PATH (device rendering: synth:DIR or "
                             "procedural)."),
    crop: int = typer.Option(128, "--crop", help="Crop side (px)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Batch size."),
    frames: int = typer.Option(5, "--frames", help="Frames per stack."),
    steps: int = typer.Option(5, "--steps", help="Timed steps (after one warm-up step)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:K."),
    virtual_width: int = typer.Option(0, "--virtual-width", min=0, help="Synthetic sources: width (px) of the "
                                      "virtual image that sets the pixel pitch (0: drawn as training does)."),
    render: str = typer.Option("both", "--render", help="Pipelines to time: cpu (render = workers), device "
                               "(render = device) or both."),
    cpu_samples: int = typer.Option(0, "--cpu-samples", min=0, help="Samples rendered on the CPU for its rate "
                                    "(0: every batch's; with --render both, the steps use the device's batches)."),
) -> None:
    """Samples per second of the data pipelines (CPU-rendered, device-rendered) and of full training steps."""
    import json
    import statistics
    import time

    import torch

    from focalcli.data import build_source, collate_samples, parse_data_spec, render_prepared
    from focalcli.runtime import device_errors, resolve_device, sync
    from focalcli.train.augment import AugmentOptions
    from focalcli.train.config import TrainConfig, build_train_model
    from focalcli.train.losses import get_loss
    from focalcli.train.mixture import MixtureDataset

    if render not in ("cpu", "device", "both"):
        raise typer.BadParameter("use cpu, device or both", param_hint="--render")
    spec = parse_data_spec(data)
    synthetic = spec.kind in ("synth", "procedural")
    if render != "cpu" and not synthetic:
        raise typer.BadParameter(f"{spec.kind} stacks are read, not rendered: use --render cpu",
                                 param_hint="--render")
    dev = resolve_device(device)
    out = {"model": model, "data": data, "crop": crop, "batch_size": batch_size, "frames": frames, "device": str(dev),
           "threads": torch.get_num_threads()}
    n_batches = steps + 1
    options = {"image_width_px": (float(virtual_width),) * 2} if virtual_width and synthetic else {}
    source = build_source(spec, train=True, synth_options=options)
    if synthetic:
        out["virtual_width"] = virtual_width or list(source.options.image_width_px)

    def mixture(mode: str) -> MixtureDataset:
        return MixtureDataset([source], [1.0], seed=0, crop=(crop, crop), n_frames=(frames, frames),
                              augment=AugmentOptions(), render=mode)

    def collated(ds: MixtureDataset, count: int) -> tuple[list[dict], float]:
        """Batches of the first ``count`` samples (whole batches only), and samples per second drawing them."""
        t = time.perf_counter()
        samples = [ds[(i // batch_size, i % batch_size)] for i in range(count)]
        rate = round(count / (time.perf_counter() - t), 2)
        return [collate_samples(samples[i : i + batch_size]) for i in range(0, count - batch_size + 1, batch_size)], \
            rate

    batches, prepared = [], []
    if render in ("cpu", "both"):
        rendered, out["data_samples_per_s"] = collated(mixture("workers"), cpu_samples or n_batches * batch_size)
        if render == "cpu" or not cpu_samples:
            batches = rendered
    if render in ("device", "both"):
        prepared, out["prepare_samples_per_s"] = collated(mixture("device"), n_batches * batch_size)

    cfg = TrainConfig(model=model)
    net = build_train_model(cfg).to(dev).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
    loss_fn = get_loss(cfg.loss)  # the training default
    use_amp = dev.type == "cuda" and torch.cuda.is_bf16_supported()

    def step(b: dict) -> None:
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_amp):
            pred = net(b["frames"].to(dev), b["focus_distances_m"].to(dev), details=True, validate=False)
        loss = loss_fn(pred, b["depth"].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(fn, items) -> float:
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
            step_s = timed(step, batches)
        if prepared:
            render_s = timed(lambda b: render_prepared(b, dev), prepared)
            if not batches:  # the model step alone, on batches rendered beforehand on the device
                ready = [render_prepared(b, dev) for b in prepared]
                step_s = timed(step, ready)
                del ready
            both_s = timed(lambda b: step(render_prepared(b, dev)), prepared)
            out["device_render_samples_per_s"] = round(batch_size / render_s, 2)
            out["device_pipeline_samples_per_s"] = round(batch_size / both_s, 2)
            out["workers_for_device_rendering"] = round(out["device_pipeline_samples_per_s"] /
                                                        out["prepare_samples_per_s"], 2)
        if batches or prepared:
            out["step_s"] = round(step_s, 4)
            out["train_samples_per_s"] = round(batch_size / step_s, 2)
    if "data_samples_per_s" in out and "train_samples_per_s" in out:
        out["workers_for_cpu_rendering"] = round(out["train_samples_per_s"] / out["data_samples_per_s"], 2)
    print(json.dumps(out, indent=2))


def register(app: typer.Typer) -> None:
    app.command("train")(bench_train)
