"""``python -m focalcli.bench depth --valset OUT``: depth accuracy of each method on each set of a validation set.

Scores every method of ``METHODS`` on every set of ``OUT`` (made by ``python -m focalcli.bench valset``) with
``focalcli.evaluation.evaluate.evaluate`` under the ``metric`` protocol (metres, every valid ground-truth pixel, no
scale alignment) and prints one table: set, method, AbsRel, SqRel, RMSE, logRMSE, delta1..3, and seconds per stack
(prediction only, frames already in memory).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import typer

__all__ = ["COLUMNS", "METHODS", "score_valset"]


def _textbook():
    from focalcli.bench.baselines import textbook_predictor

    return textbook_predictor()


def _classic():
    from focalcli.evaluation.evaluate import classic_predictor

    return classic_predictor()


# name -> factory of an ``evaluate`` predictor ((frames (N, 3, H, W), focus (N,)) -> depth (H, W) metres)
METHODS: dict[str, Callable[[], Callable]] = {"textbook": _textbook, "classic": _classic}
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
    from focalcli.errors import ConfigError
    from focalcli.evaluation.evaluate import evaluate
    from focalcli.train.data.stacks import StackFolderSource

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r}; use one of {', '.join(METHODS)}")
    results = []
    for folder in _sets(Path(valset)):
        source = StackFolderSource(folder)
        for name in methods:
            if progress is not None:
                progress(folder.name, name)
            predictor = METHODS[name]()
            elapsed = []

            def timed(frames, focus, predictor=predictor, elapsed=elapsed):
                t = time.perf_counter()
                out = predictor(frames, focus)
                elapsed.append(time.perf_counter() - t)
                return out

            r = evaluate(source, timed, protocol="metric", method=name)
            results.append({"set": folder.name, "method": name, "count": len(r.rows),
                            **{k: r.mean[k] for k in COLUMNS}, "seconds": sum(elapsed) / max(1, len(elapsed)),
                            "rows": r.to_json()["rows"]})
    return results


def bench_depth(
    valset: Path = typer.Option(..., "--valset", help="Folder made by `python -m focalcli.bench valset`."),
    methods: str = typer.Option("textbook,classic", "--methods", help=f"Comma-separated: {', '.join(METHODS)}."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every figure (and per-stack rows) here."),
) -> None:
    """Depth accuracy (metric protocol) of each method on each validation set, with seconds per stack."""
    from rich.console import Console
    from rich.table import Table

    from focalcli.errors import FocalError
    from focalcli.io.atomic import atomic_path

    err = Console(stderr=True)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    try:
        rows = score_valset(valset, names, progress=lambda s, m: err.print(f"scoring {m} on {s}"))
    except FocalError as e:
        err.print(f"[bold red]error:[/bold red] {e}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    table = Table(title=f"depth on {valset} (metric protocol: metres, no scale alignment)")
    for col in ("set", "method", "stacks", "AbsRel", "SqRel", "RMSE", "logRMSE", "delta1", "delta2", "delta3",
                "s/stack"):
        table.add_column(col, justify="left" if col in ("set", "method") else "right")
    previous = None
    for r in rows:
        table.add_row(r["set"] if r["set"] != previous else "", r["method"], str(r["count"]),
                      *(f"{r[k]:.4f}" for k in COLUMNS), f"{r['seconds']:.3f}",
                      end_section=r is not rows[-1] and rows[rows.index(r) + 1]["set"] != r["set"])
        previous = r["set"]
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = 160
    out.print(table)
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({"valset": str(valset), "protocol": "metric", "results": rows}, indent=2) + "\n",
                           encoding="utf-8")
        err.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("depth")(bench_depth)
