"""``focal predict STACK -o OUT``: depth (and all-in-focus, confidence, point cloud) for a stack or a tree of stacks."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.choices import AlignMode, ColorMap, DepthFormat, Measure, Method, Precision, Uncovered
from focalcli.cli.options import OptionalValueCommand, align_option, device_option, json_option, overwrite_option


def _parse_range(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    try:
        near, far = (float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter("use NEAR,FAR (two numbers in the depth's units, e.g. 0.5,0.9)",
                                 param_hint="--range") from None
    if not (math.isfinite(near) and math.isfinite(far) and 0 <= near < far):
        raise typer.BadParameter(f"need 0 <= NEAR < FAR, got {text}", param_hint="--range")
    return near, far


def predict(
    stack: Path = typer.Argument(..., help="A stack folder, or a folder of stack folders (batch, searched "
                                 "recursively)."),
    out: list[Path] = typer.Option(..., "-o", "--out", help="Depth file (.png 16-bit mm, .npy/.tiff float32 m); "
                                   "repeat for several formats (d.png and d.npy share d.json); for a batch, the "
                                   "output folder. Missing folders are created."),
    aif: str | None = typer.Option(None, "--aif", help="Also write the all-in-focus image here (.png/.jpg/.tif); "
                                   "for a batch, a file name inside each stack's output folder."),
    confidence: str | None = typer.Option(None, "--confidence", help="Also write the per-pixel confidence "
                                          "(.npy/.tiff float, .png 16-bit); for a batch, a file name."),
    ply: str | None = typer.Option(None, "--ply", help="Also write a coloured point cloud (binary PLY, metres): "
                                   "needs focus distances, camera.focal_length_mm and camera.pixel_pitch_um; for a "
                                   "batch, a file name."),
    preview: bool = typer.Option(False, "--preview", help="Also write a colour preview with a colour bar, "
                                 "OUT_preview.png."),
    colormap: ColorMap = typer.Option(ColorMap.turbo, "--colormap", help="Colour map of the preview (near = its "
                                      "high end: red for turbo, yellow for viridis, white for gray)."),
    depth_range: str | None = typer.Option(None, "--range", metavar="NEAR,FAR", help="Fixed preview range in the "
                                           "depth's units (default: 1st-99th percentile of each map), so that "
                                           "previews compare."),
    method: Method = typer.Option(Method.classic, "--method", help="classic (focus-measure peak) or model (a "
                                  "trained network, see --weights)."),
    weights: Path | None = typer.Option(None, "--weights", help="Model file from focal export (--method model); "
                                        "default: the weights shipped with focal."),
    device: str = device_option(),
    precision: Precision = typer.Option(Precision.fp32, "--precision", help="Model precision (fp16: GPU only)."),
    max_size: int = typer.Option(512, "--max-size", min=32, help="Model working resolution: longest side (px)."),
    measure: Measure = typer.Option(Measure.laplacian, "--measure", help="Focus measure (classic)."),
    window: int | None = typer.Option(None, "--window", min=3, help="Focus-measure window (px); default by size."),
    smooth: float | None = typer.Option(None, "--smooth", min=0.0, help="Scale (px) of the confidence-guided, "
                                        "edge-aware filling of weak (textureless) pixels from their surroundings; "
                                        "default 1% of the short side; 0 = the raw per-pixel estimate."),
    align: AlignMode = align_option(),
    align_threshold: float | None = typer.Option(None, "--align-threshold", min=0.0, help="--align auto aligns "
                                                 "when the frames move by more than this many pixels (full "
                                                 "resolution); default 0.5 for frames of 640 px, growing with "
                                                 "larger frames."),
    uncovered: Uncovered = typer.Option(Uncovered.fill, "--uncovered", help="Once aligned, pixels that not every "
                                        "frame covers (a border ring): fill (depth from the covered pixels around "
                                        "them, confidence 0) or invalid (0 in .png, NaN in .npy/.tiff)."),
    depth_format: list[DepthFormat] = typer.Option([DepthFormat.png], "--format", help="Batch only: depth file "
                                                   "format, repeatable."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Estimate depth from a focal stack (metres when focus distances are known, else frame-index units)."""
    method, measure, align = method.value, measure.value, align.value
    if method == "classic":
        con.no_blas_threads()
    from focalcli import predict as lib

    if smooth is not None and not math.isfinite(smooth):
        from focalcli.errors import ConfigError

        raise ConfigError(f"--smooth must be a finite number >= 0, got {smooth}")
    rng = _parse_range(depth_range)
    if method == "classic":
        options = {"measure": measure, "window": window, "smooth": smooth}
    else:
        options = {"weights": weights, "device": device, "precision": precision.value, "max_size": max_size}
    options.update(align=align, align_threshold_px=align_threshold)
    if uncovered is not Uncovered.fill:  # recorded when not the default: earlier batch outputs still match
        options["uncovered"] = uncovered.value
    if lib.is_batch_input(stack):
        if len(out) != 1:
            raise typer.BadParameter("a batch writes into one output folder; give -o once (and --format for "
                                     "several depth formats)", param_hint="-o")
        names = list(dict.fromkeys(f"depth.{f.value}" for f in depth_format))
        plans = lib.plan_batch(stack, out[0], depth_name=names, aif_name=aif, confidence_name=confidence,
                               preview=preview, method=method, overwrite=overwrite, options=options, ply_name=ply,
                               colormap=colormap.value, depth_range=rng)
        for folder, why in plans.skipped:
            con.info(f"[yellow]skipped[/yellow] {con.escape(str(stack / folder))}: {con.escape(why)}")
        todo = sum(p.done is None for p in plans)
        con.debug(f"{len(plans)} stack(s) under {con.escape(str(stack))}" + (f", {len(plans) - todo} done already"
                                                              if todo < len(plans) else ""))
        with con.progress_bar("predict", None) as advance:
            current = {"name": "", "label": ""}

            def on_stack(name: str, i: int, n: int):
                current.update(name=name, label=f"[{i + 1}/{n}] {name}")
                advance(0, None, description=current["label"])
                return advance

            def on_stage(stage: str) -> None:
                advance(0, None, description=f"{current['label']}: {stage}")

            summaries = lib.predict_batch(plans, method=method, overwrite=overwrite, on_stack=on_stack,
                                          on_stage=on_stage, **options)
    else:
        from focalcli.io.stack import scan_stack

        sf = scan_stack(stack)
        outputs = lib.PredictOutputs(depth=out[0], more_depths=tuple(out[1:]), aif=Path(aif) if aif else None,
                                     confidence=Path(confidence) if confidence else None, preview=preview,
                                     ply=Path(ply) if ply else None, colormap=colormap.value, depth_range=rng)
        outputs.check(overwrite)
        name = sf.path.name
        with con.progress_bar(f"predict {name}", len(sf)) as advance:

            def on_stage(stage: str) -> None:
                advance(0, None, description=f"predict {name}: {stage}")

            summaries = [lib.predict_to_files(sf, outputs, method=method, overwrite=overwrite,
                                              progress=advance, on_stage=on_stage, **options)]
    for s in summaries:
        if s.get("skipped"):
            con.info(f"skipped {con.escape(s['stack'])}: its outputs are complete already")
            continue
        record = s["align"]
        if record["applied"]:
            con.info(f"{con.escape(s['stack'])}: {con.escape(record['reason'])}")
        else:
            con.debug(f"{con.escape(s['stack'])}: {con.escape(record['reason'])}")
        if s["units"] != "m":
            con.info(f"[yellow]note:[/yellow] {con.escape(s['stack'])}: {s['note']}; add focus_distances_m to "
                     "stack.json for metres")
        for note in lib.range_notes(s):
            con.info(f"[yellow]note:[/yellow] {con.escape(s['stack'])}: {note}")
        con.debug("seconds: " + ", ".join(f"{k} {v:.3f}" for k, v in s["seconds"].items()))
        con.info(f"wrote {con.escape(', '.join(s['outputs'].values()))}")
    if as_json:
        con.print_json(summaries if len(summaries) > 1 else summaries[0])


def register(app: typer.Typer) -> None:
    app.command("predict", cls=OptionalValueCommand)(predict)
