"""``python -m focalcli.bench blur``: how much the blur changes from frame to frame, in training and in validation.

A depth-from-focus model learns from the blur it sees; if training stacks change their blur by a fraction of a pixel
per frame while the stacks it is used on change by several pixels, it learns the wrong cue. For every stack this
reports the median, over valid pixels and pairs of adjacent frames, of the change of the circle-of-confusion
diameter (thin lens, in pixels of the image the model sees), and prints percentiles over stacks for:

- ``train:KIND``: draws of the on-the-fly training sources (``synth:DIR`` and ``procedural``), ``--draws`` each, at
  ``--frames`` frames and ``--crop`` px, as ``focal train`` draws them;
- ``stacks:DIR``: every ``NAME/stack/stack.json`` + ``NAME/depth.npy`` under DIR (a ``focal synth`` output, the
  validation set of ``bench valset``, or a ``focal synth --random`` training set), its blur measured at the
  working resolution ``--max-size`` (the size ``focal predict`` runs the model at).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from focalcli.bench import report as con
from focalcli.io.depth import valid_depth


def coc_change_px(depth: np.ndarray, focus_m, focal_length_mm: float, f_number: float, pixel_pitch_um: float) -> float:
    """Median |change of the CoC diameter (px)| between adjacent frames over valid pixels (NaN for one frame)."""
    fd = np.asarray(focus_m, np.float64)
    if len(fd) < 2:
        return float("nan")
    f = focal_length_mm / 1000.0
    gain = (f / f_number) * f * fd / (fd - f) / (pixel_pitch_um * 1e-6)  # (N,) CoC px per diopter
    d = depth[valid_depth(depth)].astype(np.float64)
    q = 1.0 / d[:: max(1, d.size // 20000)]  # (P,) diopters, subsampled
    coc = gain[:, None] * np.abs(1.0 / fd[:, None] - q[None])  # (N, P)
    return float(np.median(np.abs(np.diff(coc, axis=0))))


def _training(spec: str, draws: int, frames: int, crop: int) -> list[float]:
    from focalcli.data import build_source, parse_data_spec, sample_generator

    source = build_source(parse_data_spec(spec), train=True, synth_options={"exclude": ["unidepth", "hci4d"]})
    out = []
    for i in range(draws):
        params, _, depth = source.draw_params(sample_generator(0, i), (crop, crop), frames)
        c = params.camera
        out.append(coc_change_px(depth.numpy(), params.focus_distances_m, c.focal_length_mm, c.f_number,
                                 c.pixel_pitch_um))
    return out


def _stacks(folder: Path, max_size: int) -> list[float]:
    out = []
    for meta in sorted(folder.glob("*/stack/stack.json")):
        info = json.loads(meta.read_text(encoding="utf-8"))
        depth = np.load(meta.parent.parent / "depth.npy")
        cam = info.get("camera") or {}
        if not info.get("focus_distances_m") or not all(cam.get(k) for k in ("focal_length_mm", "f_number",
                                                                             "pixel_pitch_um")):
            continue
        scale = min(1.0, max_size / max(depth.shape))  # the model sees the frames at the working resolution
        out.append(coc_change_px(depth, info["focus_distances_m"], cam["focal_length_mm"], cam["f_number"],
                                 cam["pixel_pitch_um"] / scale))
    return out


def bench_blur(
    rgbd: Path | None = typer.Option(None, "--rgbd", help="RGB-D folder of the synth:DIR training source."),
    stacks: list[Path] | None = typer.Option(None, "--stacks", help="Folder of NAME/stack + NAME/depth.npy "
                                             "(repeatable): validation sets, synth outputs, random training sets."),
    draws: int = typer.Option(200, "--draws", min=1, help="Training draws per on-the-fly source."),
    frames: int = typer.Option(10, "--frames", min=2, help="Frames per training draw."),
    crop: int = typer.Option(256, "--crop", min=16, help="Training crop (px)."),
    max_size: int = typer.Option(512, "--max-size", min=32, help="Working resolution of the validation stacks."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Per-frame change of the blur-circle diameter (px): training sources next to validation sets."""
    from rich.console import Console
    from rich.table import Table

    sets: dict[str, list[float]] = {"train:procedural": _training("procedural", draws, frames, crop)}
    if rgbd is not None:
        sets[f"train:synth:{rgbd}"] = _training(f"synth:{rgbd}", draws, frames, crop)
    for folder in stacks or []:
        for sub in sorted({p.parent.parent.parent for p in folder.glob("**/stack/stack.json")}):
            sets[f"stacks:{sub}"] = _stacks(sub, max_size)
    rows = []
    for name, values in sets.items():
        v = np.asarray([x for x in values if np.isfinite(x)])
        if v.size:
            p10, p50, p90 = (float(x) for x in np.percentile(v, [10, 50, 90]))
            rows.append({"set": name, "stacks": int(v.size), "p10": p10, "p50": p50, "p90": p90})
    if as_json:
        con.print_json(rows)
        return
    table = Table(title="change of the CoC diameter between adjacent frames (px, median over pixels)")
    for col in ("set", "stacks", "p10", "median", "p90"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for r in rows:
        table.add_row(r["set"], str(r["stacks"]), f"{r['p10']:.2f}", f"{r['p50']:.2f}", f"{r['p90']:.2f}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("blur")(bench_blur)
