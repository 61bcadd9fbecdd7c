"""``python -m focalcli.bench NAME [OPTIONS]``: run one benchmark."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(name="focal-bench", help="focal benchmarks (timings on this machine).", no_args_is_help=True,
                  add_completion=False)



@app.callback()
def _root() -> None:
    """Run one benchmark; figures are for this machine."""


# One module per benchmark under focalcli/bench/, each with ``register(app)``.
BENCHMARKS = ("predict", "startup", "align", "synth", "models", "train", "valset", "depth", "fuse", "blur")

for _name in BENCHMARKS:
    importlib.import_module(f"focalcli.bench.{_name}").register(app)

if __name__ == "__main__":
    app()
