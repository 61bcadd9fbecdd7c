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
    """A rich progress bar on stderr; yields ``advance(done, total=None, description=None)``.

    Hidden with ``-q`` or off a terminal. With ``-v`` every call also prints one line with the time since the
    previous one (``description done/total: 0.123 s``): per-frame timings.
    """
    timer = _Timer(description)
    if verbosity() < 0 or not console.is_terminal:  # nothing to show: skip importing rich.progress too

        def ignore(done: int, total: int | None = None, description: str | None = None) -> None:
            """No bar to update (timings only, with -v)."""
            timer(done, total, description)

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

        def advance(done: int, total: int | None = None, description: str | None = None) -> None:
            timer(done, total, description)
            if description is not None:
                bar.update(task, description=description)
            bar.update(task, completed=done, total=total)

        yield advance


class _Timer:
    """With ``-v``: one line per progress step, with the seconds since the previous step or description change."""

    def __init__(self, description: str):
        import time

        self._clock = time.perf_counter
        self.description = description
        self.last = self._clock()

    def __call__(self, done: int, total: int | None, description: str | None) -> None:
        if verbosity() < 1:
            return
        now = self._clock()
        if description is not None and description != self.description:
            self.description, self.last = description, now
            return
        if done:
            of = f"/{total}" if total else ""
            debug(f"{self.description} {done}{of}: {now - self.last:.3f} s")
        self.last = now
