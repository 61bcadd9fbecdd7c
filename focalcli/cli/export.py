"""``focal export CHECKPOINT -o MODEL.safetensors``: a training checkpoint to a shareable weights file."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import overwrite_option


def export(
    checkpoint: Path = typer.Argument(..., help="A checkpoint from focal train (RUN/best.pt or RUN/last.pt)."),
    out: Path = typer.Option(..., "-o", "--out", help="The .safetensors file to write."),
    trained_on: str | None = typer.Option(None, "--trained-on", help="Text for the file's metadata "
                                          "(default: the training sources and step count)."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Export a checkpoint's model as safetensors (config, focal version and training data in the metadata)."""
    from focalcli.train.checkpoint import export_checkpoint

    path = export_checkpoint(checkpoint, out, overwrite=overwrite, trained_on=trained_on)
    con.info(f"wrote {con.escape(str(path))} (use it with focal eval --weights {con.escape(str(path))})")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
