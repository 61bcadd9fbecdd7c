"""Options shared by several commands (declared once), and the command class that lets ``--align`` stand alone."""

from __future__ import annotations

import typer
from typer.core import TyperCommand

from focalcli.cli.choices import AlignMode

__all__ = ["OptionalValueCommand", "align_option", "device_option", "json_option", "overwrite_option", "seed_option"]


def overwrite_option() -> bool:
    return typer.Option(False, "--overwrite", help="Replace outputs that exist already.")


def json_option() -> bool:
    return typer.Option(False, "--json", help="Print a machine-readable summary on stdout.")


def device_option() -> str:
    return typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:K.")


def seed_option() -> int:
    return typer.Option(0, "--seed", help="Random seed (results are deterministic for a given seed).")


def align_option() -> AlignMode:
    return typer.Option(AlignMode.auto, "--align", help="Register the frames first: auto (when a quick check on "
                        "small copies finds them moving by more than --align-threshold px), on (always; a bare "
                        "--align means on) or off.")


class OptionalValueCommand(TyperCommand):
    """A command whose ``--align`` may be given without a value, meaning ``on`` (it was a plain flag before
    ``--align auto|on|off``; command lines are promises)."""

    optional_values = {"--align": ("on", tuple(m.value for m in AlignMode))}

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        fixed: list[str] = []
        for i, arg in enumerate(args):
            fixed.append(arg)
            if arg == "--":
                fixed += args[i + 1:]
                break
            if arg in self.optional_values:
                default, values = self.optional_values[arg]
                if i + 1 == len(args) or args[i + 1] not in values:
                    fixed.append(default)
        return super().parse_args(ctx, fixed)
