"""``focal align RAW -o ALIGNED``: register a raw focal stack (focus breathing, shake, exposure drift)."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.choices import MotionModel
from focalcli.cli.options import json_option, overwrite_option


def align(
    stack: Path = typer.Argument(..., help="The raw stack folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder: aligned frames, stack.json, transforms.json "
                             "(missing parent folders are created)."),
    model: MotionModel = typer.Option(MotionModel.similarity, "--model", help="Motion model."),
    reference: str = typer.Option("middle", "--reference", help="Reference frame: 'middle' or a frame index."),
    crop: bool = typer.Option(True, "--crop/--no-crop", help="Crop to the region every frame covers."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop frames that cannot be registered (default: fail)."),
    min_score: float = typer.Option(0.4, "--min-score", min=-1.0, max=1.0,
                                    help="Frames whose alignment score is below this fail."),
    max_size: int = typer.Option(1536, "--max-size", min=64, help="Long side (px) the transforms are estimated at."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Align the frames of a raw focal stack to one reference frame."""
    con.no_blas_threads()
    from focalcli.align import AlignConfig, align_folder

    if reference != "middle" and not reference.lstrip("-").isdigit():
        raise typer.BadParameter("use 'middle' or a frame index", param_hint="--reference")
    config = AlignConfig(model=model.value, reference=None if reference == "middle" else int(reference),
                         min_score=min_score, max_size=max_size)
    with con.progress_bar(f"align {stack.name}", None) as advance:

        def on_pass(name: str) -> None:
            advance(0, None, description=f"align {stack.name}: {name}")

        summary = align_folder(stack, out, config, crop=crop, skip_bad=skip_bad, overwrite=overwrite,
                               progress=advance, on_pass=on_pass)
    if summary["skipped"]:
        skipped = con.escape(", ".join(summary["skipped"]))
        con.info(f"[yellow]skipped[/yellow] {len(summary['skipped'])} frame(s): {skipped}")
    x, y, w, h = summary["crop"]
    lo, hi = summary["scale_range"]
    con.info(f"wrote {summary['frames']} frames to {con.escape(str(out))} (reference {summary['reference']}, "
             f"{w}x{h} at {x},{y}; scale {lo:.4f}-{hi:.4f})")
    if as_json:
        con.print_json(summary)


def register(app: typer.Typer) -> None:
    app.command("align")(align)
