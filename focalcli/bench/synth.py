"""``python -m focalcli.bench synth``: stacks per second of the renderer, layered vs gather.

Renders 10-frame stacks at 640x480 from a dead-leaves scene (seed 0, procedural textures, depth 0.5-8 m) with
the ``focal synth`` defaults (50 mm, f/2, 36 mm sensor, focus uniform in diopters between depth percentiles 5 and
95), rendering only (no file I/O), median of ``--repeat`` runs after one warm-up.
"""

from __future__ import annotations

import statistics
import time

import typer


def bench_synth(
    frames: int = typer.Option(10, "--frames", help="Frames per stack."),
    size: str = typer.Option("640x480", "--size", help="Image size WxH."),
    repeat: int = typer.Option(3, "--repeat", help="Runs per figure (median reported)."),
    f_number: float = typer.Option(2.0, "--f-number", help="Lens f-number."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, ..."),
    full: bool = typer.Option(False, "--full", help="Also time the layered renderer without the blur pyramid."),
) -> None:
    """Time the synth renderer: stacks per second, layered (default) vs gather."""
    import torch
    from rich.console import Console
    from rich.table import Table

    from focalcli.io.stack import Camera
    from focalcli.optics.thinlens import coc_pixels, pixel_pitch_um
    from focalcli.runtime import resolve_device
    from focalcli.synth.procedural import dead_leaves
    from focalcli.synth.render import SynthConfig, render_stack
    from focalcli.synth.sampling import fixed_params, parse_schedule

    w, h = (int(v) for v in size.lower().split("x"))
    dev = resolve_device(device)
    rgb, depth = dead_leaves(torch.Generator().manual_seed(0), h, w)
    camera = Camera(focal_length_mm=50.0, f_number=f_number, pixel_pitch_um=pixel_pitch_um(36.0, w))
    params = fixed_params(camera, parse_schedule("depth:5,95"), depth, frames)
    fd = torch.tensor(params.focus_distances_m)
    coc = coc_pixels(depth.double(), fd.double()[:, None, None, None], 0.05, f_number, camera.pixel_pitch_um * 1e-6)
    rgb, depth = rgb.to(dev), depth.to(dev)

    def run(method: str, min_coarse: float = 3.0) -> float:
        cfg = SynthConfig(method=method, min_coarse_px=min_coarse)
        render_stack(rgb, depth, camera, fd, config=cfg)  # warm-up
        times = []
        for _ in range(repeat):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            render_stack(rgb, depth, camera, fd, config=cfg)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    table = Table(title=f"focal synth renderer, {frames} frames at {w}x{h} on {dev} "
                        f"({torch.get_num_threads()} threads; median of {repeat})")
    for col in ("method", "s / stack", "stacks / s", "frames / s"):
        table.add_column(col, justify="right")
    rows = [("layered", "layered", 3.0), ("gather", "gather", 3.0)]
    if full:
        rows.append(("layered, no pyramid", "layered", 0.0))
    for label, method, min_coarse in rows:
        s = run(method, min_coarse)
        table.add_row(label, f"{s:.3f}", f"{1 / s:.2f}", f"{frames / s:.1f}")
    console = Console()
    console.print(table)
    console.print(f"scene: dead leaves (seed 0), depth {float(depth.min()):.2f}-{float(depth.max()):.2f} m; "
                  f"50 mm f/{f_number:g}, pitch {camera.pixel_pitch_um:.2f} um; CoC up to "
                  f"{float(coc.max()):.1f} px (median {float(coc.median()):.1f} px)")


def register(app: typer.Typer) -> None:
    app.command("synth")(bench_synth)


if __name__ == "__main__":
    typer.run(bench_synth)
