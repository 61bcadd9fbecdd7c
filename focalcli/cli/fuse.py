"""``focal fuse STACK -o AIF``: the all-in-focus image of a stack."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import json_option, overwrite_option


def fuse(
    stack: Path = typer.Argument(..., help="A stack folder."),
    out: Path = typer.Option(..., "-o", "--out", help="All-in-focus image (.png/.jpg/.tif)."),
    measure: str = typer.Option("laplacian", "--measure", help="Focus measure: laplacian, tenengrad, variance."),
    window: int | None = typer.Option(None, "--window", min=3, help="Focus-measure window (px); default by size."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Fuse a focal stack into one all-in-focus image (Laplacian-pyramid fusion)."""
    con.no_blas_threads()
    from focalcli.focus.classic import all_in_focus
    from focalcli.focus.measures import MEASURES
    from focalcli.io.atomic import check_output
    from focalcli.io.images import write_image
    from focalcli.io.stack import scan_stack
    from focalcli.predict import AIF_SUFFIXES

    if measure not in MEASURES:
        raise typer.BadParameter(f"use one of {', '.join(MEASURES)}", param_hint="--measure")
    sf = scan_stack(stack)
    check_output(out, overwrite=overwrite, suffixes=AIF_SUFFIXES)
    with con.progress_bar(f"fuse {sf.path.name}", len(sf)) as advance:
        image = all_in_focus(sf, measure=measure, window=window, progress=advance)
    write_image(out, image, bit_depth=16 if sf.info.bit_depth > 8 else 8)
    con.info(f"wrote {out}")
    if as_json:
        con.print_json({"stack": str(sf.path), "frames": len(sf), "aif": str(out)})


def register(app: typer.Typer) -> None:
    app.command("fuse")(fuse)
