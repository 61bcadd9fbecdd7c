"""``focal synth --rgbd DIR -o OUT``: physically based focal stacks from RGB-D data (and procedural scenes)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import json_option, overwrite_option, seed_option


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"use WIDTHxHEIGHT, e.g. 640x480 (got {text!r})", param_hint="--procedural-size"
                                 ) from None
    return h, w


def synth(
    rgbd: Path | None = typer.Option(None, "--rgbd", help="Folder of RGB-D scenes: rgb/+depth/ pairs, Middlebury, "
                                     "NYU .mat, TUM/SUN/NYU raw samples (searched recursively)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: OUT/NAME/{stack/,depth.npy,aif.png}."),
    frames: int = typer.Option(5, "--frames", min=1, help="Frames per stack."),
    f_number: float = typer.Option(2.0, "--f-number", help="Lens f-number N (>= 0.5)."),
    focal_length: float = typer.Option(50.0, "--focal-length", help="Lens focal length (mm)."),
    sensor_width: float = typer.Option(36.0, "--sensor-width",
                                       help="Sensor width (mm); pixel pitch = sensor width / image width."),
    schedule: str = typer.Option("depth:5,95", "--schedule", help="Focus distances: depth[:LOW,HIGH] (uniform in "
                                 "diopters between depth percentiles), uniform:NEAR,FAR (m) or list:D1,D2,... (m)."),
    seed: int = seed_option(),
    workers: int = typer.Option(0, "--workers", min=0, help="Parallel processes (0 = one per CPU core, up to 8)."),
    procedural: int = typer.Option(0, "--procedural", min=0, help="Also render this many dead-leaves scenes "
                                   "(textures cut from the RGB-D images)."),
    procedural_size: str = typer.Option("640x480", "--procedural-size", help="Size of procedural scenes, WxH."),
    depth_scale: float | None = typer.Option(None, "--depth-scale", min=1e-9, help="Depth PNG value per metre for "
                                             "rgb/+depth/ folders (default 1000: millimetres)."),
    method: str = typer.Option("layered", "--method", help="layered (occlusion-aware) or gather (fast)."),
    psf: str = typer.Option("disk", "--psf", help="Blur kernel: disk, gaussian or power."),
    shot_noise: float = typer.Option(0.0, "--shot-noise", min=0.0, help="Shot-noise variance per unit signal."),
    read_noise: float = typer.Option(0.0, "--read-noise", min=0.0, help="Read-noise std (fraction of full scale)."),
    bit_depth: int = typer.Option(8, "--bit-depth", help="Frame bit depth: 8 or 16."),
    random: int = typer.Option(0, "--random", min=0, help="Instead of one stack per scene: this many random "
                               "training samples (windows of virtual images, random optics and schedules) drawn from "
                               "the training split of --rgbd and from dead-leaves scenes; for focal train --data "
                               "stacks:OUT."),
    crop: int = typer.Option(256, "--crop", min=16, help="--random: sample side (px)."),
    holdout: int = typer.Option(5, "--holdout", min=0, help="--random: every K-th RGB-D scene is held out."),
    exclude: list[str] | None = typer.Option(None, "--exclude", help="--random: leave out RGB-D scenes whose name "
                                             "contains this (repeatable), e.g. non-commercial data."),
    procedural_share: float = typer.Option(0.5, "--procedural-share", min=0.0, max=1.0,
                                           help="--random: share of dead-leaves samples."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Render synthetic focal stacks with ground-truth depth (thin lens, occlusion-aware layered defocus)."""
    from focalcli.synth.render import SynthConfig
    from focalcli.synthesize import SynthJob, synthesize

    if bit_depth not in (8, 16):
        raise typer.BadParameter("use 8 or 16", param_hint="--bit-depth")
    render = SynthConfig(method=method, psf=psf, shot_noise=shot_noise, read_noise=read_noise, bit_depth=bit_depth)
    job = SynthJob(frames=frames, f_number=f_number, focal_length_mm=focal_length, sensor_width_mm=sensor_width,
                   schedule=schedule, seed=seed, procedural=procedural, procedural_size=_size(procedural_size),
                   depth_scale=depth_scale, render=render, random=random, crop=crop, holdout=holdout,
                   exclude=tuple(exclude or ()), procedural_share=procedural_share)
    workers = workers or min(8, os.cpu_count() or 1)
    with con.progress_bar("synth", None) as advance:
        manifest = synthesize(rgbd, out, job, workers=workers, overwrite=overwrite, progress=advance)
    con.info(f"wrote {manifest['count']} scenes to {con.escape(str(out))} "
             f"(manifest: {con.escape(str(out / 'manifest.json'))})")
    if as_json:
        con.print_json({"out": str(out), "count": manifest["count"], "scenes": [s["name"] for s in manifest["scenes"]],
                        "manifest": str(out / "manifest.json")})


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
