"""``python -m focalcli.bench models``: parameters, seconds per stack and the time share of each part, per preset.

Each preset (random weights; or ``--weights FILE``, an exported model) runs a random ``frames``-frame stack at each
size under ``torch.inference_mode`` (one warm-up, then the median of ``repeats``). Part shares come from forward
hooks on stem, encoder (with the focus embedding), fusion and decoder (with the head). With ``--precision bf16``
every case also runs in fp32 on the same input, and the speed-up and the differences of the depth maps are
reported: max and mean of |bf16 - fp32| / fp32, and the max of |bf16 - fp32| over the fp32 map's range
(max - min), the stricter one for an untrained model whose depth varies little across the image.

``--compile`` runs ``predict_depth(compile=MODE)`` (``auto``: CUDA graphs on CUDA) after ``--warmup`` untimed runs;
part shares are not timed then (hooks would split the compiled graph) and show as "-". GPU latency as in
``make gpu-check``::

    python -m focalcli.bench models --device cuda --precision bf16 --sizes 384 --frames 10 --compile auto
"""

from __future__ import annotations

import statistics
import time

import typer

from focalcli.bench import report as con

_PART_MODULES = {"stem": ("stem",), "encoder": ("encoder", "focus_embed"), "fusion": ("fusion",),
                 "decoder": ("decoder", "head")}


def _time_parts(model, device):
    """Install hooks that add each part's forward time to a dict; returns ``(times, remove)``."""
    import torch

    times = dict.fromkeys(_PART_MODULES, 0.0)
    starts = {}
    handles = []

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for part, names in _PART_MODULES.items():
        for name in names:
            module = getattr(model, name, None)
            if module is None:
                continue

            def pre(_m, _args, key=(part, name)):
                sync()
                starts[key] = time.perf_counter()

            def post(_m, _args, _out, key=(part, name)):
                sync()
                times[key[0]] += time.perf_counter() - starts[key]

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    return times, lambda: [h.remove() for h in handles]


def _run(model, frames, distances, precision, repeats, device, compile_mode=None, warmup=1):
    """``(depth, median seconds, part shares or None)``. Shares are timed in extra eager runs that do not count
    towards the median (their hooks synchronise the device), and not at all when compiled."""
    from focalcli.models.inference import predict_depth
    from focalcli.runtime import sync

    def once(mode):
        sync(device)
        t = time.perf_counter()
        depth = predict_depth(model, frames, distances, precision=precision, compile=mode or False).depth
        sync(device)
        return depth, time.perf_counter() - t

    for _ in range(warmup):  # compilation, CUDA-graph recording, cuDNN autotuning
        once(compile_mode)
    runs = [once(compile_mode) for _ in range(repeats)]
    shares = None
    if compile_mode is None:
        times, remove = _time_parts(model, device)
        part_runs = [once(None) for _ in range(repeats)]
        remove()
        total = sum(t for _, t in part_runs)
        shares = {k: v / total for k, v in times.items()}
    return runs[-1][0], statistics.median(t for _, t in runs), shares


def _numpy_row(model, x, fd, repeats: int, torch_row: dict) -> dict:
    """The same case on the FocusVolume model's numpy twin (what ``focal predict`` runs on a CPU), with the largest
    depth difference to torch relative to the depth range."""
    import numpy as np

    from focalcli.models.focusvolume_numpy import FocusVolumeNumpy

    net = FocusVolumeNumpy(model.config, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    frames = [f.permute(1, 2, 0).numpy() for f in x[0].cpu()]  # (H, W, 3) each
    positions = (1.0 / fd[0].cpu().double().numpy()) if fd is not None else np.arange(len(frames), dtype=np.float64)
    net.predict(frames, positions)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        position, _ = net.predict(frames, positions)
        times.append(time.perf_counter() - t)
    seconds = statistics.median(times)
    return {**torch_row, "preset": f"{torch_row['preset']} (numpy)", "seconds": round(seconds, 4),
            "ms": round(seconds * 1000, 2), "shares": None, "threads": None}


def models(
    presets: str = typer.Option("", "--presets", help="Comma-separated preset names (default: all)."),
    weights: str = typer.Option("", "--weights", help="Benchmark this exported model file instead of the presets."),
    skip: str = typer.Option("", "--skip", help="Comma-separated presets to leave out (e.g. the slow base)."),
    sizes: str = typer.Option("384,256", "--sizes", help="Comma-separated square input sizes."),
    frames: int = typer.Option(10, "--frames", min=1, help="Frames per stack."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed runs per case (median reported)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 (also runs fp32 to compare) or fp16."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:K."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights and input."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0: torch's default)."),
    compile: str = typer.Option("none", "--compile", help="torch.compile mode: none, auto (CUDA graphs on CUDA), "
                                "default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs."),
    warmup: int = typer.Option(0, "--warmup", min=0, help="Untimed runs first (0: 1 eager, 3 compiled)."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="With bf16/fp16, also time fp32 and compare."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON on stdout."),
) -> None:
    """Inference time per stack and per part for each model preset."""
    import torch

    from focalcli.models import build_model, count_parameters, preset_names
    from focalcli.models.inference import compile_mode
    from focalcli.runtime import resolve_device
    from focalcli.weights import load_model

    dev = resolve_device(device)
    mode = compile_mode("auto" if compile == "auto" else (False if compile == "none" else compile), dev)
    warmup = warmup or (3 if mode else 1)
    if threads:
        torch.set_num_threads(threads)
    names = [n.strip() for n in presets.split(",") if n.strip()] or preset_names()
    names = [weights] if weights else [n for n in names if n not in {s.strip() for s in skip.split(",")}]
    rows = []
    for name in names:
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = (load_model(name) if weights else build_model(name)).to(dev).eval()
        aware = getattr(model.config, "focus_distance_aware", True)  # a FocusVolume model always is
        for size in (int(s) for s in sizes.split(",")):
            x = torch.rand(1, frames, 3, size, size, generator=gen).to(dev)
            fd = (1.0 / torch.linspace(1 / 0.2, 1 / 2.0, frames))[None].to(dev) if aware else None
            con.info(f"{name} {size}x{size} x{frames} ({precision}{f', compiled: {mode}' if mode else ''})")
            depth, seconds, shares = _run(model, x, fd, precision, repeats, dev, mode, warmup)
            row = {"preset": model.config.name if weights else name, "params": count_parameters(model), "size": size,
                   "frames": frames, "precision": precision, "device": str(dev), "threads": torch.get_num_threads(),
                   "compile": mode or "none", "seconds": round(seconds, 4), "ms": round(seconds * 1000, 2),
                   "shares": ({k: round(v, 3) for k, v in shares.items()}
                              if shares and model.config.arch == "focdepthformer" else None)}
            if precision != "fp32" and compare:
                ref, ref_seconds, _ = _run(model, x, fd, "fp32", repeats, dev, mode, warmup)
                diff = (depth - ref).abs()
                rel = diff / ref.abs().clamp_min(1e-6)
                span = float(ref.max() - ref.min())
                row.update(fp32_seconds=round(ref_seconds, 4), speedup=round(ref_seconds / seconds, 2),
                           max_rel_diff=float(rel.max()), mean_rel_diff=float(rel.mean()),
                           max_diff_over_range=float(diff.max()) / span if span > 0 else None)
            rows.append(row)
            if model.config.arch == "focusvolume" and dev.type == "cpu" and precision == "fp32":
                rows.append(_numpy_row(model, x, fd, repeats, row))
    if as_json:
        con.print_json(rows)
        return
    head = f"{'preset':<24}{'params':>8}{'size':>6}{'ms/stack':>10}  {'stem':>5}{'enc':>6}{'fuse':>6}{'dec':>6}"
    if precision != "fp32" and compare:
        head += f"{'fp32 s':>9}{'speedup':>8}{'max rel':>9}{'mean rel':>10}{'max/range':>10}"
    typer.echo(f"{frames}-frame stacks, {precision}, {dev}, {torch.get_num_threads()} threads, compile: "
               f"{mode or 'none'}")
    typer.echo(head)
    for r in rows:
        s = r["shares"]
        parts = (f"{s['stem']:>5.0%}{s['encoder']:>6.0%}{s['fusion']:>6.0%}{s['decoder']:>6.0%}"
                 if s and "stem" in s else f"{'-':>5}{'-':>6}{'-':>6}{'-':>6}")
        line = f"{r['preset']:<24}{r['params'] / 1e6:>7.1f}M{r['size']:>6}{r['seconds'] * 1000:>10.2f}  {parts}"
        if precision != "fp32" and compare:
            span = r["max_diff_over_range"]
            line += (f"{r['fp32_seconds']:>9.3f}{r['speedup']:>7.2f}x{r['max_rel_diff']:>9.2e}"
                     f"{r['mean_rel_diff']:>10.2e}{span if span is not None else float('nan'):>10.2e}")
        typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
