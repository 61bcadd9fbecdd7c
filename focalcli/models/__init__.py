"""Depth-from-focus networks: FocDepthFormer (the paper's) and FocusVolume (fast), behind one interface.

Importing this package imports nothing heavy: names resolve on first use (PEP 562), so configs, presets and the
numpy inference of the shipped model work without torch. ``build_model(name)`` builds a network.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ARCHS": "config",
    "DEFAULT_MODEL": "config",
    "FocusVolumeConfig": "config",
    "ModelConfig": "config",
    "build_model": "build",
    "config_from_dict": "config",
    "get_config": "config",
    "preset_doc": "config",
    "preset_names": "config",
    "FocDepthFormer": "focdepthformer",
    "default_focus_distances": "focdepthformer",
    "FocusVolumeNet": "focusvolume",
    "PRECISIONS": "runtime",
    "ModelRunner": "runner",
    "DepthPrediction": "inference",
    "count_parameters": "inference",
    "predict_depth": "inference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return __all__
