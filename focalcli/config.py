"""Config machinery only: read TOML, build a frozen dataclass strictly, dump the resolved values.

Layering is the caller's: defaults (the dataclass) < a config file < explicit overrides (CLI flags). Unknown keys
and values of the wrong type raise ``ConfigError``; nothing is ``exec``'d.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path

from focalcli.errors import ConfigError

__all__ = ["build_dataclass", "load_toml"]


def load_toml(path: str | os.PathLike) -> dict:
    """The top-level table of a TOML file.

    Raises:
        ConfigError: missing or invalid file.
    """
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10: the tomli backport is a dependency there
        import tomli as tomllib

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: not valid TOML ({e})") from e


def _coerce(value: object, hint: object, key: str, where: str) -> object:
    origin = typing.get_origin(hint)
    bad = ConfigError(f"{where}: {key!r} must be {getattr(hint, '__name__', hint)}, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, key, where)
            except ConfigError:
                continue
        raise bad
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise bad
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[T, ...]: any length
            return tuple(_coerce(v, args[0], key, where) for v in value)
        if len(value) != len(args):  # tuple[A, B]: exactly one value per slot
            raise ConfigError(f"{where}: {key!r} needs {len(args)} values, got {len(value)} ({value!r})")
        return tuple(_coerce(v, a, key, where) for v, a in zip(value, args, strict=True))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise bad
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if hint is int or hint is str:
        if isinstance(value, bool) or not isinstance(value, hint):
            raise bad
        return value
    return value


def build_dataclass(cls: type, *layers: dict, where: str = "config"):
    """Instantiate dataclass ``cls`` from dict layers (later layers win), checking keys and types.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict = {}
    for layer in layers:
        unknown = sorted(set(layer) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        for key, value in layer.items():
            values[key] = _coerce(value, hints[key], key, where)
    return cls(**values)
