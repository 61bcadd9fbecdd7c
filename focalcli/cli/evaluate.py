"""``focal eval``: score a trained model or the classical method on an evaluation set, the field's way."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from focalcli.cli import console as con
from focalcli.cli.choices import AlignMode
from focalcli.cli.options import OptionalValueCommand, align_option, device_option, overwrite_option
from focalcli.errors import InputError


def evaluate(
    data: str = typer.Option(..., "--data", help="Evaluation set: ddff:FILE.h5 (val split), fod500:DIR (test "
                             "split), stacks:DIR, synth:DIR or procedural (held-out synthetic samples)."),
    weights: Path | None = typer.Option(None, "--weights", help="Model weights (.safetensors from focal export); "
                                        "implies --method model."),
    method: str | None = typer.Option(None, "--method", help="classic, or model (the weights shipped with focal "
                                      "unless --weights is given)."),
    protocol: str | None = typer.Option(None, "--protocol", help="ddff (disparity), fod500 (metres, clipped to "
                                        "1.5 m) or metric (metres); default: the one of the data kind."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the means and per-stack rows here (.json)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Score only the first N stacks."),
    max_size: int = typer.Option(512, "--max-size", min=32, help="Model working resolution: longest side (px), as "
                                 "focal predict."),
    precision: str = typer.Option("fp32", "--precision", help="Model precision: fp32, bf16 (CPU/GPU), fp16 (GPU)."),
    device: str = device_option(),
    align: AlignMode = align_option(),
    overwrite: bool = overwrite_option(),
) -> None:
    """Evaluate depth from focus: RMSE, logRMSE, AbsRel, SqRel, Bumpiness and delta accuracies per stack, then means.

    Each method is run exactly as focal predict runs it (the alignment check of --align auto, and for a model the
    working resolution, inverse-depth resizing and precision)."""
    if weights is None and method is None:
        raise typer.BadParameter("give --method classic, --method model or --weights FILE", param_hint="--method")
    method = method or "model"
    if method not in ("classic", "model"):
        raise typer.BadParameter(f"unknown method {method!r}; use classic or model", param_hint="--method")
    if method == "classic" and weights is not None:
        raise typer.BadParameter("--weights goes with --method model, not classic", param_hint="--weights")
    from focalcli.runtime import PRECISIONS

    if precision not in PRECISIONS:
        raise typer.BadParameter(f"use one of {', '.join(PRECISIONS)}", param_hint="--precision")
    from focalcli.data import build_source, parse_data_spec
    from focalcli.evaluation import evaluate as lib
    from focalcli.io.atomic import check_output

    if protocol is not None and protocol not in lib.PROTOCOLS:
        raise typer.BadParameter(f"use one of {', '.join(lib.PROTOCOLS)}", param_hint="--protocol")
    if json_out is not None:
        check_output(json_out, overwrite=overwrite, suffixes=[".json"])
    if weights is not None:
        from focalcli.weights import read_metadata

        read_metadata(weights)  # a missing or foreign file fails before the data is opened (exit 5)
    spec = parse_data_spec(data)
    protocol = protocol or lib.default_protocol(spec.kind)
    source = build_source(spec, train=False)
    if len(source) == 0:
        raise InputError(f"--data {data}: holds no stacks to evaluate")
    if method == "model":
        from focalcli.learned import default_weights, load_runner

        path = weights or default_weights()
        runner = load_runner(path, device=device, precision=precision, max_size=max_size)
        predictor, label = lib.model_predictor(runner, align=align.value), path.name
    else:
        predictor, label = lib.classic_predictor(align=align.value), "classic"
    with con.progress_bar(f"eval {label}", None) as advance:
        result = lib.evaluate(source, predictor, protocol=protocol, method=label, limit=limit, progress=advance)
    if all(math.isnan(r["abs_rel"]) for r in result.rows):  # a mean of nothing is not a score
        raise InputError(f"--data {data}: no stack has valid ground truth under the {protocol} protocol (or every "
                         "prediction was non-finite); nothing to score")
    _print_table(result)
    if json_out is not None:
        import json

        from focalcli.io.atomic import atomic_path

        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        con.info(f"wrote {con.escape(str(json_out))}")


def _print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    from focalcli.evaluation.metrics import METRIC_KEYS

    table = Table(title=f"{result.method} | protocol {result.protocol} | {result.units} | {len(result.rows)} stacks")
    table.add_column("stack")
    for k in METRIC_KEYS:
        table.add_column(k, justify="right")
    rows = result.rows if len(result.rows) <= 20 else []
    for r in rows:
        table.add_row(r["name"], *(f"{r[k]:.4f}" for k in METRIC_KEYS))
    table.add_row("[bold]mean[/bold]", *(f"[bold]{result.mean[k]:.4f}[/bold]" for k in METRIC_KEYS),
                  end_section=True)
    out = Console(highlight=False)  # the result: stdout
    if not out.is_terminal:
        out.width = 160  # pipes and files get the whole table, not an 80-column cut
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("eval", cls=OptionalValueCommand)(evaluate)
