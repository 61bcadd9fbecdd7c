"""``focal fuse STACK -o AIF``: the all-in-focus image of a stack."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.choices import AlignMode, Measure
from focalcli.cli.options import OptionalValueCommand, align_option, json_option, overwrite_option


def fuse(
    stack: Path = typer.Argument(..., help="A stack folder."),
    out: Path = typer.Option(..., "-o", "--out", help="All-in-focus image (.png/.jpg/.tif); missing folders are "
                             "created."),
    measure: Measure = typer.Option(Measure.laplacian, "--measure", help="Focus measure."),
    window: int | None = typer.Option(None, "--window", min=3, help="Focus-measure window (px); default by size."),
    align: AlignMode = align_option(),
    align_threshold: float | None = typer.Option(None, "--align-threshold", min=0.0, help="--align auto aligns "
                                                 "when the frames move by more than this many pixels (full "
                                                 "resolution); default 0.5 for frames of 640 px, growing with "
                                                 "larger frames."),
    overwrite: bool = overwrite_option(),
    as_json: bool = json_option(),
) -> None:
    """Fuse a focal stack into one all-in-focus image (Laplacian-pyramid fusion)."""
    con.no_blas_threads()
    from focalcli.io.atomic import check_output
    from focalcli.io.stack import scan_stack
    from focalcli.predict import AIF_SUFFIXES, fuse_to_file

    sf = scan_stack(stack)
    check_output(out, overwrite=overwrite, suffixes=AIF_SUFFIXES)
    with con.progress_bar(f"fuse {sf.path.name}", len(sf)) as advance:

        def on_stage(stage: str) -> None:
            advance(0, None, description=f"fuse {sf.path.name}: {stage}")

        summary = fuse_to_file(sf, out, measure=measure.value, window=window, align=align.value,
                             align_threshold_px=align_threshold, overwrite=overwrite, progress=advance,
                             on_stage=on_stage)
    record = summary["align"]
    (con.info if record["applied"] else con.debug)(f"{con.escape(str(sf.path))}: {record['reason']}")
    con.info(f"wrote {con.escape(str(out))}")
    if as_json:
        con.print_json(summary)


def register(app: typer.Typer) -> None:
    app.command("fuse", cls=OptionalValueCommand)(fuse)
