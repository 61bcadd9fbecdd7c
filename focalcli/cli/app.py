"""The root ``focal`` command: global options, the subcommands, and the one place that maps errors to exits."""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from focalcli.cli import console as con
from focalcli.errors import FocalError

__all__ = ["app", "main"]


class _FocalGroup(TyperGroup):
    """Turns a ``FocalError`` raised by any command into one line on stderr and its exit code."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except FocalError as e:
            con.console.print(f"[bold red]error:[/bold red] {e}", soft_wrap=True)
            raise typer.Exit(e.exit_code) from None


app = typer.Typer(
    cls=_FocalGroup,
    name="focal",
    help="Depth maps and all-in-focus images from focal stacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        from focalcli import __version__

        sys.stdout.write(f"focal {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More detail on stderr (repeatable)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors on stderr; no progress bars."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version),
) -> None:
    con.set_verbosity(-1 if quiet else verbose)


def _register() -> None:
    # One module per command; each exposes ``register(app)``.
    from focalcli.cli import align, evaluate, export, fuse, info, models, predict, synth, train

    for module in (info, predict, fuse, align, synth, models, train, export, evaluate):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
