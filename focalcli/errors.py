"""One exception tree for everything a user can cause.

Each class carries the process exit code that ``focal`` uses for it. Only ``focalcli.cli.app`` turns these into
exits; the library only raises. Usage errors (bad options) stay Click's code 2 and bugs keep their traceback (1).
"""

from __future__ import annotations

__all__ = ["ConfigError", "DeviceError", "FocalError", "InputError", "ModelFileError", "OutputError", "ShapeError"]


class FocalError(Exception):
    """Root of every error focal raises on purpose."""

    exit_code = 1


class InputError(FocalError):
    """An input (stack folder, image, stack.json, dataset) is missing, unreadable or inconsistent."""

    exit_code = 3


class ShapeError(InputError):
    """A tensor or image has the wrong shape.

    Args:
        message: what was being checked.
        expected: the expected shape, as text (``"B N C H W"``) or a tuple.
        actual: the actual shape.
    """

    def __init__(self, message: str, expected: object = None, actual: object = None):
        detail = f" (expected {expected}, got {tuple(actual) if actual is not None else None})" if expected else ""
        super().__init__(message + detail)
        self.expected = expected
        self.actual = actual


class ConfigError(FocalError):
    """A configuration value or file is invalid (unknown key, wrong type, out of range)."""

    exit_code = 4


class DeviceError(ConfigError):
    """The device cannot run what was asked: it does not exist, lacks the precision, or ran out of memory."""


class ModelFileError(FocalError):
    """A weights or checkpoint file is missing, not ours, or does not match the model."""

    exit_code = 5


class OutputError(FocalError):
    """An output cannot be written: it exists (without ``--overwrite``), its folder is missing, or its format is
    unknown."""

    exit_code = 6
