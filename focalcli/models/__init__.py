"""FocDepthFormer: stem, ViT encoder, latent stack fusion, DPT decoder and heads, wired by ``focdepthformer``.

Importing this package builds nothing; ``build_model(name)`` does.
"""

from focalcli.models.focdepthformer import (
    DEFAULT_MODEL,
    FocDepthFormer,
    ModelConfig,
    build_model,
    default_focus_distances,
    get_config,
    preset_doc,
    preset_names,
)
from focalcli.models.inference import PRECISIONS, DepthPrediction, count_parameters, predict_depth

__all__ = [
    "DEFAULT_MODEL",
    "PRECISIONS",
    "DepthPrediction",
    "FocDepthFormer",
    "ModelConfig",
    "build_model",
    "count_parameters",
    "default_focus_distances",
    "get_config",
    "predict_depth",
    "preset_doc",
    "preset_names",
]
