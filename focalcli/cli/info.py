"""``focal info STACK``: what a stack folder holds and what is missing."""

from __future__ import annotations

from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.options import json_option


def info(
    stack: Path = typer.Argument(..., help="A stack folder (images + optional stack.json)."),
    as_json: bool = json_option(),
) -> None:
    """Show the frames, size, bit depth, focus distances and camera of a stack folder."""
    con.no_blas_threads()
    from focalcli.io.stack import scan_stack

    sf = scan_stack(stack)
    summary = {
        "path": str(sf.path),
        "frames": sf.names,
        "count": len(sf),
        "width": sf.info.width,
        "height": sf.info.height,
        "bit_depth": sf.info.bit_depth,
        "focus_distances_m": list(sf.focus_distances_m) if sf.focus_distances_m else None,
        "focus_distance_source": sf.distance_source,
        "camera": sf.camera.to_json(),
    }
    missing = []
    if sf.focus_distances_m is None:
        missing.append("focus distances (depth will be in frame-index units; add them to stack.json)")
    for key in ("focal_length_mm", "f_number", "pixel_pitch_um"):
        if getattr(sf.camera, key) is None:
            missing.append(f"camera.{key}")
    summary["missing"] = missing
    if as_json:
        con.print_json(summary)
        return
    out = typer.echo
    out(f"stack     {sf.path}")
    out(f"frames    {len(sf)} ({sf.names[0]} … {sf.names[-1]})")
    out(f"size      {sf.info.width}x{sf.info.height}, {sf.info.bit_depth}-bit")
    if sf.focus_distances_m:
        dist = ", ".join(f"{d:.4g}" for d in sf.focus_distances_m)
        out(f"focus     {dist} m (from {sf.distance_source})")
    else:
        out("focus     unknown")
    cam = ", ".join(f"{k}={v:.4g}" for k, v in sf.camera.to_json().items()) or "unknown"
    out(f"camera    {cam}")
    for m in missing:
        out(f"missing   {m}")


def register(app: typer.Typer) -> None:
    app.command("info")(info)
