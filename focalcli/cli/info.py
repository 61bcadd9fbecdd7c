"""``focal info STACK``: what a stack folder holds, what focal will assume, and what looks out of place."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import json_option


def info(
    stack: Path = typer.Argument(..., help="A stack folder (images + optional stack.json)."),
    content: bool = typer.Option(True, "--content/--no-content", help="Check the frames' content for images that "
                                 "are not frames of the stack (an all-in-focus result, ...); decodes small copies."),
    as_json: bool = json_option(),
) -> None:
    """Show the frames, size, bit depth, focus distances and camera of a stack folder, what focal will assume about
    it, and frames that do not look like part of the stack."""
    con.no_blas_threads()
    from focalcli.info import stack_info

    summary = stack_info(stack, content=content)
    if as_json:
        con.print_json(summary)
    else:
        _print(summary)
    if summary["odd_size"]:
        from focalcli.errors import InputError

        odd = summary["odd_size"][0]
        raise InputError(f"{odd['frame']}: frame size {odd['size']} differs from the other frames' "
                         f"{summary['width']}x{summary['height']}; other commands refuse this folder until a "
                         "stack.json 'frames' list leaves it out")


def _print(summary: dict) -> None:
    out = typer.echo
    names = summary["frames"]
    out(f"stack     {summary['path']}")
    out(f"frames    {summary['count']} ({names[0]} … {names[-1]})")
    out(f"order     {summary['order']}")
    out(f"size      {summary['width']}x{summary['height']}, {summary['bit_depth']}-bit")
    if summary["focus_distances_m"]:
        dist = ", ".join(f"{d:.4g}" for d in summary["focus_distances_m"])
        out(f"focus     {dist} m (from {summary['focus_distance_source']})")
    else:
        out("focus     unknown")
    cam = ", ".join(f"{k}={v:.4g}" for k, v in summary["camera"].items()) or "unknown"
    out(f"camera    {cam}")
    for s in summary["suspects"]:
        out(f"suspect   {s['frame']}: {s['why']}")
    for note in summary["notes"]:
        out(f"note      {note}")
    for m in summary["missing"]:
        need = summary["needed_for"].get(m)
        out(f"missing   {m}" + (f" (only {need} needs it)" if need else ""))
    if summary["optional"]:
        out(f"unknown   {', '.join(summary['optional'])} (no command needs it)")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
