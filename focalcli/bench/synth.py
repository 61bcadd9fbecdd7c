"""``python -m focalcli.bench synth``: samples per second of the renderer, layered vs gather, on a CPU or a GPU.

Renders ``--batch`` dead-leaves scenes (seeds 0..B-1, procedural textures, depth 0.5-8 m) of ``--size`` with
``--frames`` frames each in one ``synth.render.render_frames`` call, with the ``focal synth`` optics (50 mm,
f/``--f-number``, 36 mm sensor, focus uniform in diopters between depth percentiles 5 and 95). The pixel pitch is
36 mm over ``--virtual-width`` pixels (default: the image width), so a 256-px crop of a 1024-px virtual image shows
the blur a real camera records (CoC up to ~75 px at f/2). Rendering only (no file I/O), median of ``--repeat`` runs
after one warm-up; with ``--noise``, shot and read noise come from per-sample seeds (``synth.noise``).

Examples::

    python -m focalcli.bench synth                                        # one 640x480 stack of 10 frames
    python -m focalcli.bench synth --size 256x256 --frames 8 --virtual-width 768 --threads 1   # a CPU worker
    python -m focalcli.bench synth --device cuda --batch 32 --size 256x256 --frames 8 --virtual-width 1024
"""

from __future__ import annotations

import statistics
import time

import typer


def bench_synth(
    frames: int = typer.Option(10, "--frames", min=1, help="Frames per stack."),
    size: str = typer.Option("640x480", "--size", help="Image size WxH."),
    batch: int = typer.Option(1, "--batch", min=1, help="Stacks rendered together in one call."),
    virtual_width: int = typer.Option(0, "--virtual-width", min=0,
                                      help="Width (px) of the virtual image that sets the pixel pitch (0: --size)."),
    repeat: int = typer.Option(3, "--repeat", min=1, help="Runs per figure (median reported)."),
    f_number: float = typer.Option(2.0, "--f-number", help="Lens f-number."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:K."),
    methods: str = typer.Option("layered,gather", "--methods", help="Renderers to time, comma-separated."),
    noise: bool = typer.Option(False, "--noise", help="Add shot and read noise (device-independent seeds)."),
    full: bool = typer.Option(False, "--full", help="Also time the layered renderer without the blur pyramid."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch CPU threads (0: torch's default)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON on stdout."),
) -> None:
    """Time the synth renderer: samples (stacks) per second, layered (default) vs gather."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from focalcli.bench import report as con
    from focalcli.optics.thinlens import coc_gain, coc_pixels, pixel_pitch_um
    from focalcli.runtime import resolve_device, sync
    from focalcli.synth.procedural import dead_leaves
    from focalcli.synth.render import SynthConfig, render_frames
    from focalcli.synth.sampling import focus_schedule, parse_schedule

    if threads:
        torch.set_num_threads(threads)
    w, h = (int(v) for v in size.lower().split("x"))
    dev = resolve_device(device)
    pitch = pixel_pitch_um(36.0, virtual_width or w)
    scenes = [dead_leaves(torch.Generator().manual_seed(b), h, w) for b in range(batch)]
    rgb = torch.stack([s[0] for s in scenes])  # (B, 3, H, W)
    depth = torch.stack([s[1] for s in scenes])  # (B, 1, H, W)
    fd = torch.stack([focus_schedule(parse_schedule("depth:5,95"), d, frames, min_distance=0.05) for d in depth])
    gain = coc_gain(fd.double(), 0.05, f_number) / (pitch * 1e-6)  # (B, N) CoC px per diopter
    coc = coc_pixels(depth[:, None].double(), fd.double()[:, :, None, None, None], 0.05, f_number, pitch * 1e-6)
    rgb, depth, fd, gain = rgb.to(dev), depth.to(dev), fd.to(dev), gain.to(dev)
    kw = {"shot_noise": 1e-3, "read_noise": 2e-3, "noise_seed": torch.arange(batch)} if noise else {}

    def run(method: str, min_coarse: float) -> float:
        cfg = SynthConfig(method=method, min_coarse_px=min_coarse)
        render_frames(rgb, depth, fd, gain, config=cfg, **kw)  # warm-up
        times = []
        for _ in range(repeat):
            sync(dev)
            t = time.perf_counter()
            render_frames(rgb, depth, fd, gain, config=cfg, **kw)
            sync(dev)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    cases = [(m, m, 3.0) for m in methods.split(",") if m]
    if full:
        cases.append(("layered, no pyramid", "layered", 0.0))
    rows = []
    for label, method, min_coarse in cases:
        con.info(f"{label}: {batch} x {frames} frames at {w}x{h} on {dev}")
        s = run(method, min_coarse)
        rows.append({"method": label, "device": str(dev), "batch": batch, "frames": frames, "size": f"{w}x{h}",
                     "virtual_width": virtual_width or w, "noise": noise, "threads": torch.get_num_threads(),
                     "seconds": round(s, 4), "samples_per_s": round(batch / s, 2), "frames_per_s": round(batch *
                     frames / s, 1), "max_coc_px": round(float(coc.max()), 1),
                     "median_coc_px": round(float(coc.median()), 1)})
    if as_json:
        con.print_json(rows)
        return
    table = Table(title=f"focal synth renderer, {batch} x {frames} frames at {w}x{h} on {dev} "
                        f"({torch.get_num_threads()} threads; median of {repeat})")
    for col in ("method", "s / batch", "samples / s", "frames / s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["method"], f"{r['seconds']:.3f}", f"{r['samples_per_s']:.2f}", f"{r['frames_per_s']:.1f}")
    console = Console()
    console.print(table)
    console.print(f"scenes: dead leaves (seeds 0-{batch - 1}), depth {float(depth.min()):.2f}-"
                  f"{float(depth.max()):.2f} m; 50 mm f/{f_number:g}, pitch {pitch:.2f} um (36 mm / "
                  f"{virtual_width or w} px); CoC up to {float(coc.max()):.1f} px "
                  f"(median {float(coc.median()):.1f} px)")


def register(app: typer.Typer) -> None:
    app.command("synth")(bench_synth)


if __name__ == "__main__":
    typer.run(bench_synth)
