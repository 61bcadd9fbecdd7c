"""The one stderr console, progress bars and the ``--json`` printer.

rich is imported only when stderr is a terminal (colours, progress bars): off a terminal (a script, a pipe, a log
file) the messages are written as plain lines, the text of their rich markup without styles or wrapping, and the
~30 ms of importing rich are saved on every run.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

__all__ = ["escape", "no_blas_threads", "plain", "print_json", "progress_bar", "rich_console", "set_verbosity",
           "verbosity"]  # and ``console`` (module ``__getattr__``)

_state = {"verbosity": 0}
# a rich markup tag, after any backslashes: "[" and a letter, "#", "/" or "@", up to the first "]" (no "[" within)
_TAG = re.compile(r"(\\*)(\[[a-z#/@][^\[]*?])")


def escape(text: str) -> str:
    """``text`` with everything rich would read as a markup tag made literal (a backslash before its ``[``)."""
    text = _TAG.sub(lambda m: f"{m[1]}{m[1]}\\{m[2]}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def plain(markup: str) -> str:
    """The text that rich markup shows: tags dropped, escaped brackets literal."""

    def text(m: re.Match) -> str:
        slashes = len(m[1])
        return "\\" * (slashes // 2) + (m[2] if slashes % 2 else "")

    return _TAG.sub(text, markup)


class _Plain:
    """A stderr off a terminal: each message one plain line (``plain``), written to the current ``sys.stderr``."""

    is_terminal = False

    def print(self, message: object = "", **_: object) -> None:
        sys.stderr.write(plain(str(message)) + "\n")
        sys.stderr.flush()


@cache
def rich_console():
    """rich's console on stderr (imports rich): for rich's own widgets."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def __getattr__(name: str):
    """``console``: rich's console on stderr when stderr is a terminal, else a ``_Plain`` one (decided when it is
    used, so a test that swaps ``sys.stderr`` gets the plain lines)."""
    if name == "console":
        return rich_console() if _is_terminal() else _Plain()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False


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
        __getattr__("console").print(message)


def debug(message: str) -> None:
    """A line on stderr with ``-v``."""
    if verbosity() >= 1:
        __getattr__("console").print(f"[dim]{message}[/dim]")


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
    if verbosity() < 0 or not _is_terminal():  # nothing to show: skip importing rich too

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
    with Progress(*columns, console=rich_console(), transient=True) as bar:
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
