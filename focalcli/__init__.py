"""focal: depth maps and all-in-focus images from focal stacks.

Public entry points (each is what one ``focal`` command calls)::

    from focalcli import read_stack, depth_from_focus, all_in_focus

Names are imported on first use (PEP 562), so ``import focalcli`` and the ``focal`` command start fast; torch is
loaded only by the code paths that build tensors.

Layers (imports only point down, no cycles; ``tests/test_import_layers.py`` checks every import, lazy ones too)::

    6  __main__                                      ``python -m focalcli``
    5  cli, bench                   (isolated)       commands and benchmarks; nothing imports them
    4  predict, train, evaluation, align,            tasks: one per command family
       synthesize, info
    3  models, focus, data, synth, weights, learned  networks, classical method, datasets, renderer, model files
    2  optics, io                                    pure physics; files, images, stack folders, atomic writes
    1  checks, config, runtime                       input checks, strict config builder, devices and seeds
    0  errors, this package root                     the error tree; ``__version__`` and the lazy names below

A unit may import its own tier and lower ones. ``synth/`` is the renderer (``data`` renders on the fly with it);
the ``focal synth`` task is ``synthesize``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "Camera": "focalcli.io.stack",
    "ConfigError": "focalcli.errors",
    "DepthResult": "focalcli.io.depth",
    "FocalError": "focalcli.errors",
    "FocalStack": "focalcli.io.stack",
    "InputError": "focalcli.errors",
    "ModelFileError": "focalcli.errors",
    "OutputError": "focalcli.errors",
    "ShapeError": "focalcli.errors",
    "StackFolder": "focalcli.io.stack",
    "all_in_focus": "focalcli.focus.classic",
    "depth_from_focus": "focalcli.focus.classic",
    "read_stack": "focalcli.io.stack",
    "scan_stack": "focalcli.io.stack",
}

__all__ = [
    "Camera",
    "ConfigError",
    "DepthResult",
    "FocalError",
    "FocalStack",
    "InputError",
    "ModelFileError",
    "OutputError",
    "ShapeError",
    "StackFolder",
    "__version__",
    "all_in_focus",
    "depth_from_focus",
    "read_stack",
    "scan_stack",
]

if TYPE_CHECKING:
    from focalcli.errors import ConfigError, FocalError, InputError, ModelFileError, OutputError, ShapeError
    from focalcli.focus.classic import all_in_focus, depth_from_focus
    from focalcli.io.depth import DepthResult
    from focalcli.io.stack import Camera, FocalStack, StackFolder, read_stack, scan_stack


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'focalcli' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
