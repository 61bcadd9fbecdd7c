"""``python -m focalcli.bench depth --valset OUT``: depth accuracy of each method on each set of a validation set.

Scores every method of ``METHODS`` on every set of ``OUT`` (made by ``python -m focalcli.bench valset``) with
``focalcli.evaluation.evaluate.evaluate`` under the ``metric`` protocol (metres, every valid ground-truth pixel, no
scale alignment) and prints one table: set, method, AbsRel, SqRel, RMSE, logRMSE, delta1..3, and seconds per stack
(prediction only, frames already in memory). Every method sees the frames ``focal predict`` would give it: aligned
when the quick alignment check finds them moving (``f2-n10-breathing``), untouched otherwise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import typer

__all__ = ["COLUMNS", "METHODS", "score_valset"]


def _textbook(_: str = ""):
    from focalcli.bench.baselines import textbook_predictor

    return textbook_predictor()


def _classic(_: str = ""):
    from focalcli.evaluation.evaluate import classic_predictor

    return classic_predictor()


def _model(weights: str = ""):
    """``model`` (the weights shipped with focal) or ``model:FILE``, run as focal predict runs it."""
    from focalcli.evaluation.evaluate import model_predictor
    from focalcli.learned import load_runner

    return model_predictor(load_runner(weights or None))


# name[:ARG] -> factory(ARG) of an ``evaluate`` predictor ((frames (N, 3, H, W), focus (N,)) -> depth (H, W) m)
METHODS: dict[str, Callable[[str], Callable]] = {"textbook": _textbook, "classic": _classic, "model": _model}


def _check_methods(methods) -> None:
    """Raise ``ConfigError`` on a method name (before any ``:FILE``) that ``METHODS`` lacks."""
    from focalcli.errors import ConfigError

    unknown = [m for m in methods if m.partition(":")[0] not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r}; use one of {', '.join(METHODS)}")
COLUMNS = ("abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3")


def _sets(valset: Path) -> list[Path]:
    from focalcli.errors import InputError

    if not valset.is_dir():
        raise InputError(f"{valset}: no such folder")
    manifest = valset / "manifest.json"
    if manifest.is_file():
        names = [s["name"] for s in json.loads(manifest.read_text(encoding="utf-8")).get("sets", [])]
        sets = [valset / n for n in names if (valset / n).is_dir()]
    else:
        sets = sorted(p for p in valset.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not sets:
        raise InputError(f"{valset}: no sets (made by python -m focalcli.bench valset)")
    return sets


def score_valset(valset: str | Path, methods: list[str], *,
                 progress: Callable[[str, str], None] | None = None) -> list[dict]:
    """Score ``methods`` on every set of ``valset``.

    Returns:
        One row per (set, method): ``set``, ``method``, ``count``, the means of ``COLUMNS`` and ``seconds``
        (per stack), plus ``rows`` (per-stack metrics).

    Raises:
        InputError: ``valset`` holds no sets. ConfigError: unknown method.
    """
    from focalcli.data.stacks import StackFolderSource
    from focalcli.evaluation.evaluate import evaluate, takes_camera

    _check_methods(methods)
    results = []
    for folder in _sets(Path(valset)):
        source = StackFolderSource(folder)
        for name in methods:
            if progress is not None:
                progress(folder.name, name)
            kind, _, arg = name.partition(":")
            predictor = METHODS[kind](arg)
            elapsed = []

            optics = takes_camera(predictor)

            def timed(frames, focus, camera=None, predictor=predictor, elapsed=elapsed, optics=optics):
                t = time.perf_counter()
                out = predictor(frames, focus, camera=camera) if optics else predictor(frames, focus)
                elapsed.append(time.perf_counter() - t)
                return out

            r = evaluate(source, timed, protocol="metric", method=name)
            results.append({"set": folder.name, "method": name, "count": len(r.rows),
                            **{k: r.mean[k] for k in COLUMNS}, "seconds": sum(elapsed) / max(1, len(elapsed)),
                            "rows": r.to_json()["rows"]})
    return results


def gt_frame_index(depth: np.ndarray, focus_m: list[float]) -> np.ndarray:
    """Ground-truth depth as a fractional 0-based frame index (linear in diopters between the two focus planes it
    lies between); NaN where the depth is invalid or outside the focus range. ``(H, W)`` -> ``(H, W)``."""
    q = 1.0 / np.asarray(focus_m, np.float64)  # (N,) decreasing diopters
    d = np.where(depth > 0, depth, np.nan).astype(np.float64)
    inv = 1.0 / d
    index = np.interp(inv, q[::-1], np.arange(len(q))[::-1].astype(np.float64))  # np.interp needs increasing xp
    inside = (inv <= q[0]) & (inv >= q[-1])
    return np.where(inside, index, np.nan)


def _textbook_index():
    """The textbook method without focus distances: frame indices stand in for diopters."""
    from focalcli.bench.baselines import textbook_depth

    def run(frames, focus):
        n = frames.shape[0]
        fake = [1.0 / (n - i) for i in range(n)]  # diopters n .. 1: linear in the frame index
        images = [f.permute(1, 2, 0).numpy() for f in frames]
        return n - 1.0 / textbook_depth(images, fake)  # diopters back to a 0-based index

    return run


def score_frame_index(valset: str | Path, methods: list[str], *,
                      progress: Callable[[str, str], None] | None = None) -> list[dict]:
    """Each method run *without* focus distances, scored in frame-index units: RMSE and mean |error| in frame
    spacings against the ground truth's fractional frame index (pixels inside the focus range only).

    Returns:
        One row per (set, method): ``set``, ``method``, ``count``, ``rmse_frames``, ``mae_frames``, ``within_half``
        (share of pixels within half a frame spacing).
    """
    from focalcli.data.stacks import StackFolderSource

    _check_methods(methods)
    results = []
    for folder in _sets(Path(valset)):
        source = StackFolderSource(folder)
        items = [source.item(i) for i in range(len(source))]
        for name in methods:
            if progress is not None:
                progress(folder.name, name)
            kind, _, arg = name.partition(":")
            if kind == "textbook":
                predict = _textbook_index()
            else:
                base = METHODS[kind](arg)

                def predict(frames, focus, base=base):
                    return base(frames, None).numpy() - 1.0  # 1-based frame index -> 0-based

            errors = []
            for item in items:
                gt = gt_frame_index(item["depth"][0].numpy(), item["focus_distances_m"].tolist())
                pred = np.asarray(predict(item["frames"], None), np.float64)
                ok = np.isfinite(gt) & np.isfinite(pred)
                errors.append((pred - gt)[ok])
            e = np.concatenate(errors) if errors else np.zeros(0)
            results.append({"set": folder.name, "method": name, "count": len(items),
                            "rmse_frames": float(np.sqrt(np.mean(e**2))), "mae_frames": float(np.mean(np.abs(e))),
                            "within_half": float(np.mean(np.abs(e) <= 0.5))})
    return results


def bench_depth(
    valset: Path = typer.Option(..., "--valset", help="Folder made by `python -m focalcli.bench valset`."),
    methods: str = typer.Option("textbook,classic", "--methods", help=f"Comma-separated: {', '.join(METHODS)} "
                                "(model: the shipped weights; model:FILE: an exported model)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every figure (and per-stack rows) here."),
    frame_index: bool = typer.Option(False, "--frame-index", help="Run the methods without focus distances and "
                                     "score frame-index depth (RMSE in frame spacings), as for macro stacks."),
) -> None:
    """Depth accuracy (metric protocol) of each method on each validation set, with seconds per stack."""
    from rich.console import Console
    from rich.table import Table

    from focalcli.io.atomic import atomic_path

    err = Console(stderr=True)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    if frame_index:
        rows = _scored(score_frame_index, valset, names, err)
        title = f"frame-index depth on {valset} (no focus distances given; errors in frame spacings)"
        columns = ("set", "method", "stacks", "RMSE", "mean |err|", "within 0.5")
        cells = [(r["set"], r["method"], str(r["count"]), f"{r['rmse_frames']:.3f}", f"{r['mae_frames']:.3f}",
                  f"{r['within_half']:.3f}") for r in rows]
    else:
        rows = _scored(score_valset, valset, names, err)
        title = f"depth on {valset} (metric protocol: metres, no scale alignment)"
        columns = ("set", "method", "stacks", "AbsRel", "SqRel", "RMSE", "logRMSE", "delta1", "delta2", "delta3",
                   "s/stack")
        cells = [(r["set"], r["method"], str(r["count"]), *(f"{r[k]:.4f}" for k in COLUMNS), f"{r['seconds']:.3f}")
                 for r in rows]
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in ("set", "method") else "right")
    for i, row in enumerate(cells):  # one section per set, its name on its first row
        first = i == 0 or rows[i - 1]["set"] != rows[i]["set"]
        last = i == len(rows) - 1 or rows[i + 1]["set"] != rows[i]["set"]
        table.add_row(row[0] if first else "", *row[1:], end_section=last and i < len(rows) - 1)
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = 160
    out.print(table)
    if json_out is not None:
        protocol = "frame_index" if frame_index else "metric"
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({"valset": str(valset), "protocol": protocol, "results": rows}, indent=2) + "\n",
                           encoding="utf-8")
        err.print(f"wrote {json_out}")


def _scored(score, valset: Path, names: list[str], err) -> list[dict]:
    """``score(valset, names)`` with progress on stderr; a user's error ends the command with one line."""
    from focalcli.errors import FocalError

    try:
        return score(valset, names, progress=lambda s, m: err.print(f"scoring {m} on {s}"))
    except FocalError as e:
        err.print(f"[bold red]error:[/bold red] {e}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None


def register(app: typer.Typer) -> None:
    app.command("depth")(bench_depth)
