"""``focal predict STACK -o OUT``: depth (and all-in-focus, confidence) for a stack or a folder of stacks."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import device_option, json_option, overwrite_option


def predict(
    stack: Path = typer.Argument(..., help="A stack folder, or a folder of stack folders (batch)."),
    out: Path = typer.Option(..., "-o", "--out", help="Depth file (.png 16-bit mm, .npy/.tiff float32 m); "
                             "for a batch, the output folder."),
    aif: str | None = typer.Option(None, "--aif", help="Also write the all-in-focus image here (.png/.jpg/.tif); "
                                   "for a batch, a file name inside each stack's output folder."),
    confidence: str | None = typer.Option(None, "--confidence", help="Also write the per-pixel confidence "
                                          "(.npy/.tiff float, .png 16-bit); for a batch, a file name."),
    preview: bool = typer.Option(False, "--preview", help="Also write a turbo colour preview, OUT_preview.png."),
    method: str = typer.Option("classic", "--method", help="Depth method: classic (focus-measure peak) or model "
                               "(a trained FocDepthFormer, see --weights)."),
    weights: Path | None = typer.Option(None, "--weights", help="Model file from focal export (--method model); "
                                        "default: the weights shipped with focal."),
    device: str = device_option(),
    precision: str = typer.Option("fp32", "--precision", help="Model precision: fp32, bf16 (CPU/GPU), fp16 (GPU)."),
    max_size: int = typer.Option(512, "--max-size", min=32, help="Model working resolution: longest side (px)."),
    measure: str = typer.Option("laplacian", "--measure", help="Focus measure: laplacian, tenengrad, variance."),
    window: int | None = typer.Option(None, "--window", min=3, help="Focus-measure window (px); default by size."),
    smooth: float | None = typer.Option(None, "--smooth", min=0.0, help="Scale (px) of the confidence-guided, "
                                        "edge-aware filling of weak (textureless) pixels from their surroundings; "
                                        "default 1% of the short side; 0 = the raw per-pixel estimate."),
    align: bool = typer.Option(False, "--align", help="Register the frames first (as `focal align`, uncropped)."),
    depth_format: str = typer.Option("png", "--format", help="Batch only: depth file format (png, npy, tiff)."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Estimate depth from a focal stack (metres when focus distances are known, else frame-index units)."""
    if method == "classic":
        con.no_blas_threads()
    from focalcli import predict as lib

    if method not in lib.METHODS:
        raise typer.BadParameter(f"unknown method {method!r}; use one of {', '.join(lib.METHODS)}",
                                 param_hint="--method")
    from focalcli.focus.measures import MEASURES

    if measure not in MEASURES:
        raise typer.BadParameter(f"use one of {', '.join(MEASURES)}", param_hint="--measure")
    if smooth is not None and not math.isfinite(smooth):
        from focalcli.errors import ConfigError

        raise ConfigError(f"--smooth must be a finite number >= 0, got {smooth}")
    if method == "classic":
        options = {"measure": measure, "window": window, "smooth": smooth, "align": align}
    else:
        from focalcli.models.runner import PRECISIONS

        if precision not in PRECISIONS:
            raise typer.BadParameter(f"use one of {', '.join(PRECISIONS)}", param_hint="--precision")
        options = {"weights": weights, "device": device, "precision": precision, "max_size": max_size,
                   "align": align}
    if lib.is_batch_input(stack):
        if depth_format not in ("png", "npy", "tiff", "tif"):
            raise typer.BadParameter("use png, npy or tiff", param_hint="--format")
        plans = lib.plan_batch(stack, out, depth_name=f"depth.{depth_format}", aif_name=aif,
                               confidence_name=confidence, preview=preview, method=method, overwrite=overwrite,
                               options=options)

        def on_stack(name: str, i: int, n: int):
            advance(0, None)
            con.debug(f"[{i + 1}/{n}] {name}")
            return advance

        with con.progress_bar("predict", None) as advance:
            summaries = lib.predict_batch(plans, method=method, overwrite=overwrite, on_stack=on_stack, **options)
    else:
        from focalcli.io.stack import scan_stack

        sf = scan_stack(stack)
        outputs = lib.PredictOutputs(depth=out, aif=Path(aif) if aif else None,
                                     confidence=Path(confidence) if confidence else None, preview=preview)
        outputs.check(overwrite)
        with con.progress_bar(f"predict {sf.path.name}", len(sf)) as advance:
            summaries = [lib.predict_to_files(sf, outputs, method=method, overwrite=overwrite,
                                              progress=advance, **options)]
    for s in summaries:
        if s.get("skipped"):
            con.info(f"skipped {s['stack']}: its outputs are complete already")
            continue
        if s["units"] != "m":
            con.info(f"[yellow]note:[/yellow] {s['stack']}: {s['note']}; add focus_distances_m to stack.json "
                     "for metres")
        con.info(f"wrote {', '.join(s['outputs'].values())}")
    if as_json:
        con.print_json(summaries if len(summaries) > 1 else summaries[0])


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
