"""Output of the benchmarks: progress lines for people on stderr, results on stdout (a table or JSON).

The benchmarks sit beside the CLI, not on top of it, so they keep their own two helpers instead of importing
``focalcli.cli``.
"""

from __future__ import annotations

import json
import sys

__all__ = ["info", "print_json"]


def info(message: str) -> None:
    """A progress line on stderr (rich markup allowed)."""
    from rich.console import Console

    Console(stderr=True, highlight=False).print(message)


def print_json(obj: object) -> None:
    """A machine-readable result on stdout."""
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    sys.stdout.flush()
