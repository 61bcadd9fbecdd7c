"""Options shared by several commands (declared once)."""

from __future__ import annotations

import typer

__all__ = ["device_option", "json_option", "overwrite_option", "seed_option"]


def overwrite_option() -> bool:
    return typer.Option(False, "--overwrite", help="Replace outputs that exist already.")


def json_option() -> bool:
    return typer.Option(False, "--json", help="Print a machine-readable summary on stdout.")


def device_option() -> str:
    return typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:K.")


def seed_option() -> int:
    return typer.Option(0, "--seed", help="Random seed (results are deterministic for a given seed).")
