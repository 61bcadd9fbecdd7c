"""``focal models``: the model presets focal knows, their size, and whether their weights ship with focal."""

from __future__ import annotations

import typer

from focalcli.cli import console as con
from focalcli.cli.options import json_option


def models(as_json: bool = json_option()) -> None:
    """List the model presets (FocDepthFormer, FocusVolume): parameters, focus-distance awareness, native input
    size, shipped weights."""
    from focalcli.weights import list_models

    rows = list_models()
    if as_json:
        con.print_json(rows)
        return
    out = typer.echo
    out(f"{'name':<24} {'arch':<15} {'params':>8}  {'focus dist.':<11} {'input':>7}  {'weights':<8}")
    for r in rows:
        size = f"{r['input_size']}x{r['input_size']}" if r["input_size"] else "any"
        weights = "shipped" if r["weights_shipped"] else "-"
        mark = "  (default)" if r["default"] else ""
        aware = "yes" if r["focus_distance_aware"] else "no"
        out(f"{r['name']:<24} {r['arch']:<15} {r['params'] / 1e6:>7.2f}M  {aware:<11} {size:>7}  {weights:<8}{mark}")


def register(app: typer.Typer) -> None:
    app.command("models")(models)
