"""The root ``focal`` command: global options, the subcommands, and the one place that maps errors to exits."""

from __future__ import annotations

import os
import signal
import sys

import typer
from typer.core import TyperGroup

from focalcli.cli import console as con
from focalcli.errors import FocalError, OutputError

__all__ = ["app", "hoist_global_flags", "main"]


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks (temporary files) run before the exit."""


_MAIN_PID: list[int] = []  # the process that installed _on_sigterm


def _on_sigterm(signum, frame) -> None:
    if os.getpid() not in _MAIN_PID:  # a forked child (a data-loader worker): die the default way
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


def _error_line(message: str) -> None:
    """``error: MESSAGE`` as one line on stderr (``message`` is rich markup; line breaks are folded)."""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    con.console.print(f"[bold red]error:[/bold red] {text}", soft_wrap=True, highlight=False)


_GLOBAL_FLAGS = ("--verbose", "--quiet")  # and -v, -vv, ..., -q


def _is_global_flag(arg: str) -> bool:
    return arg in _GLOBAL_FLAGS or arg == "-q" or (len(arg) > 1 and arg[0] == "-" and set(arg[1:]) == {"v"})


def hoist_global_flags(args: list[str]) -> list[str]:
    """Move ``-v``/``-vv``/``--verbose``/``-q``/``--quiet`` given after the subcommand in front of it, so that
    ``focal predict STACK -o d.png -v`` works like ``focal -v predict ...``. Arguments after ``--`` stay put."""
    args = list(args)
    try:
        sub = next(i for i, a in enumerate(args) if not a.startswith("-"))  # the root options take no values
    except StopIteration:
        return args
    end = args.index("--") if "--" in args[sub:] else len(args)
    moved = [a for a in args[sub + 1:end] if _is_global_flag(a)]
    rest = [a for a in args[sub + 1:end] if not _is_global_flag(a)]
    return [*args[:sub], *moved, args[sub], *rest, *args[end:]]


class _FocalGroup(TyperGroup):
    """The one error boundary: every error a user can cause ends as one line on stderr and its exit code.

    ``FocalError`` -> its ``exit_code``; an ``OSError`` that no layer below turned into one (a write that failed
    outside focal's writers) -> 6; Ctrl-C -> 130 and SIGTERM -> 143, after the temporary files are cleaned up.
    The global ``-v``/``-q`` are accepted after the subcommand too (``hoist_global_flags``).
    """

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_flags(args))

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except FocalError as e:
            _error_line(con.escape(str(e)))
            raise typer.Exit(e.exit_code) from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            _error_line(con.escape(f"{where}{e.strerror or e}"))
            raise typer.Exit(OutputError.exit_code) from None
        except KeyboardInterrupt:
            _error_line("interrupted")
            raise typer.Exit(130) from None
        except Terminated:
            _error_line("terminated")
            raise typer.Exit(143) from None


app = typer.Typer(
    cls=_FocalGroup,
    name="focal",
    help="Depth maps and all-in-focus images from focal stacks.",
    no_args_is_help=True,
    add_completion=True,  # focal --install-completion [bash|zsh|fish|powershell]
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
    """Console-script entry point (SIGTERM cleans up like Ctrl-C, then exits with 143)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _MAIN_PID.append(os.getpid())
        signal.signal(signal.SIGTERM, _on_sigterm)
    app()
