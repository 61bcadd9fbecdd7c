"""``build_model``: a freshly initialised network from a preset name or a config (imports torch)."""

from __future__ import annotations

from focalcli.models.config import FocusVolumeConfig, ModelConfig, get_config
from focalcli.models.focdepthformer import FocDepthFormer
from focalcli.models.focusvolume import FocusVolumeNet

__all__ = ["build_model"]


def build_model(model: str | ModelConfig | FocusVolumeConfig) -> FocDepthFormer | FocusVolumeNet:
    """A freshly initialised network from a preset name or a config (on the default device; move it with ``.to``).

    Raises:
        ConfigError: unknown preset.
    """
    config = get_config(model) if isinstance(model, str) else model
    if config.arch == "focusvolume":
        return FocusVolumeNet(config=config)
    return FocDepthFormer(config=config)
