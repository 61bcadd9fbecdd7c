"""The one stderr console, progress bars and the ``--json`` printer."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console

__all__ = ["console", "no_blas_threads", "print_json", "progress_bar", "set_verbosity", "verbosity"]

console = Console(stderr=True, highlight=False)
_state = {"verbosity": 0}


def no_blas_threads() -> None:
    """For commands that never multiply matrices (classic depth, fusion, alignment, info): keep numpy's OpenBLAS
    from starting its thread pool, whose threads spin for ~0.1 s after numpy loads and take a core from the work.

    Only effective before numpy is first imported; a value the user set is kept.
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def set_verbosity(level: int) -> None:
    """-q gives -1 (errors only), default 0, each -v adds one."""
    _state["verbosity"] = level


def verbosity() -> int:
    return _state["verbosity"]


def info(message: str) -> None:
    """A line for people on stderr, unless ``-q``."""
    if verbosity() >= 0:
        console.print(message)


def debug(message: str) -> None:
    """A line on stderr with ``-v``."""
    if verbosity() >= 1:
        console.print(f"[dim]{message}[/dim]")


def print_json(obj: object) -> None:
    """A machine-readable result on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[callable]:
    """A rich progress bar on stderr; yields ``advance(done, total)``. Hidden with ``-q`` or off a terminal."""
    if verbosity() < 0 or not console.is_terminal:  # nothing to show: skip importing rich.progress too

        def ignore(done: int, total: int | None = None) -> None:
            """No bar to update."""

        yield ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(done: int, total: int | None = None) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
