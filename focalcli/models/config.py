"""Model configurations, the named presets and the one strict loader -- without importing torch.

Two architectures share one interface (``forward(frames (B, N, 3, H, W), focus_distances_m (B, N) or None) ->
depth (B, 1, H, W)``) and are told apart by their config's ``arch``:

- ``focdepthformer``: the paper's network (Kang et al., arXiv 2310.11178), ``ModelConfig``;
- ``focusvolume``: a small focus-volume network for fast CPU inference, ``FocusVolumeConfig``.

Weights files carry the config as JSON; ``config_from_dict`` rebuilds it strictly (unknown keys, wrong types and
out-of-range values are a ``ConfigError``) through the project's one config builder, ``focalcli.config``.
``focalcli.models.build.build_model`` turns a config into a network (that module imports torch).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from focalcli.config import build_dataclass
from focalcli.errors import ConfigError

__all__ = ["ARCHS", "DEFAULT_MODEL", "FocusVolumeConfig", "ModelConfig", "config_from_dict", "get_config",
           "preset_doc", "preset_names"]


# Allowed ranges of the numeric ModelConfig fields, (low, high) inclusive. Generous, but a file or TOML value outside
# them is a typo or an attack, never a model: sizes of 0 divide by zero, negative ones crash deep inside torch, and
# huge ones allocate gigabytes before any check (the total is bounded again in weights.check_model_size).
_RANGES: dict[str, tuple[float, float]] = {
    "image_size": (4, 8192),
    "patch_size": (4, 256),
    "width": (1, 16384),
    "depth": (1, 256),
    "heads": (1, 1024),
    "mlp_ratio": (0.0625, 64.0),
    "stem_branch": (1, 4096),
    "stem_mid": (1, 4096),
    "stem_out": (1, 4096),
    "global_grid": (1, 64),
    "lstm_hidden": (1, 16384),
    "lstm_layers": (1, 64),
    "activation_threshold": (-1e6, 1e6),
    "decoder_features": (1, 4096),
    "key_channels": (1, 4096),
    "default_near_m": (1e-6, 1e6),
    "default_far_m": (1e-6, 1e6),
}


def _range_problems(c: ModelConfig) -> list[str]:
    """What is out of range in ``c`` (finite numbers within ``_RANGES``; positive sizes in the tuples)."""
    problems = []
    for key, (lo, hi) in _RANGES.items():
        v = getattr(c, key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
            problems.append(f"{key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
    for key, hi in (("hooks", 256), ("decoder_channels", 4096)):
        v = getattr(c, key)
        if not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= hi for x in v):
            problems.append(f"{key} must hold integers in [1, {hi}], got {list(v)!r}")
    return problems


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a FocDepthFormer's architecture (weights files carry it as JSON)."""

    arch: str = "focdepthformer"  # architecture tag (files written before it existed are FocDepthFormers)
    name: str = "custom"  # preset name, or "custom"
    image_size: int = 384  # native (square) input size: sets the learned position grid
    patch_size: int = 16  # input pixels per token side (a multiple of the stem's stride 4)
    width: int = 768  # token width D
    depth: int = 6  # transformer blocks
    heads: int = 12  # attention heads
    mlp_ratio: float = 4.0  # MLP hidden width / D
    hooks: tuple[int, ...] = ()  # 1-based blocks feeding the decoder (four, the last = depth); () = evenly spaced
    stem_branch: int = 64  # channels of each of the 3x3/5x5/7x7 stem convolutions
    stem_mid: int = 256  # channels of the stem's 3x3 mixing convolution
    stem_out: int = 64  # channels of the stem's output (1x1 convolution)
    global_grid: int = 4  # stem features are pooled to this grid for the global-token MLP
    lstm_hidden: int = 768  # LSTM hidden size
    lstm_layers: int = 3  # LSTM layers
    activation_threshold: float = 0.4  # token activation threshold (see models.fusion); negative = all tokens
    decoder_channels: tuple[int, ...] = (96, 192, 384, 640)  # DPT reassemble widths, shallow to deep
    decoder_features: int = 256  # DPT fusion width
    focus_distance_aware: bool = False  # embed focus distances and use the metric softmax-over-frames head
    key_channels: int = 32  # query/key width of the focus head
    default_near_m: float = 0.1  # default schedule (no focus distances given): nearest focus distance, m
    default_far_m: float = 1.5  # ... farthest focus distance, m (frames uniform in diopters in between)

    def __post_init__(self):
        if not self.hooks:
            object.__setattr__(self, "hooks", tuple(math.ceil(self.depth * i / 4) for i in range(1, 5)))
        object.__setattr__(self, "hooks", tuple(self.hooks))
        object.__setattr__(self, "decoder_channels", tuple(self.decoder_channels))
        problems = _range_problems(self)
        if problems:  # the checks below divide by these sizes
            raise ConfigError(f"model config {self.name!r}: " + "; ".join(problems))
        if self.arch != "focdepthformer":
            problems.append(f"arch must be 'focdepthformer', got {self.arch!r}")
        if self.patch_size % 4 or self.image_size % self.patch_size:
            problems.append("patch_size must be a multiple of 4 dividing image_size")
        if self.width % self.heads:
            problems.append("width must be a multiple of heads")
        if len(self.hooks) != 4 or list(self.hooks) != sorted(set(self.hooks)) or self.hooks[0] < 1 \
                or self.hooks[-1] != self.depth:
            problems.append("hooks must be four increasing block indices ending at depth")
        if len(self.decoder_channels) != 4:
            problems.append("decoder_channels must hold four widths")
        if not 0 < self.default_near_m < self.default_far_m:
            problems.append("need 0 < default_near_m < default_far_m")
        if problems:
            raise ConfigError(f"model config {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FocusVolumeConfig:
    """Everything that defines a FocusVolume network (weights files carry it as JSON)."""

    arch: str = "focusvolume"  # architecture tag (weights files are dispatched on it)
    name: str = "custom"  # preset name, or "custom"
    bands: int = 8  # learned focus filters per scale
    scales: int = 3  # filter scales: full, 1/2, 1/4 resolution (1-3)
    widths: tuple[int, ...] = (16, 24, 32, 48, 64)  # volume channels per U-Net level (strides 4, 8, 16, ...)
    logit_bound: float = 10.0  # per-frame logits are b * tanh(l / b)
    residual_bound: float = 1.0  # largest residual, in mean frame spacings

    def __post_init__(self):
        object.__setattr__(self, "widths", tuple(self.widths))
        problems = []
        if self.arch != "focusvolume":
            problems.append(f"arch must be 'focusvolume', got {self.arch!r}")
        if not 1 <= self.bands <= 64:
            problems.append("bands must be in 1..64")
        if not 1 <= self.scales <= 3:
            problems.append("scales must be 1, 2 or 3")
        if not 1 <= len(self.widths) <= 7 or any(not 1 <= w <= 512 for w in self.widths):
            problems.append("widths must hold 1 to 7 channel counts in 1..512")
        if not 0 < self.logit_bound <= 100 or not 0 <= self.residual_bound <= 10:
            problems.append("need 0 < logit_bound <= 100 and 0 <= residual_bound <= 10")
        if problems:
            raise ConfigError(f"model config {self.name!r}: " + "; ".join(problems))

    @property
    def stride(self) -> int:
        """Input sizes are padded to a multiple of this (the coarsest level's stride)."""
        return 4 * 2 ** (len(self.widths) - 1)

    @property
    def volume_inputs(self) -> int:
        """Channels entering the volume: relative and mean log energies, mean image, position, spacing."""
        return 2 * self.bands * self.scales + 3 + 2

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)



ARCHS: dict[str, type] = {"focdepthformer": ModelConfig, "focusvolume": FocusVolumeConfig}


def config_from_dict(raw: dict, where: str = "model config"):
    """The config a dict describes (``arch`` picks the class; FocDepthFormer when absent), built strictly.

    Raises:
        ConfigError: not a dict, unknown ``arch``, unknown keys, wrong types or out-of-range values.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a JSON object")
    arch = raw.get("arch", "focdepthformer")
    if arch not in ARCHS:
        raise ConfigError(f"{where}: unknown arch {arch!r}; use one of {', '.join(ARCHS)}")
    return build_dataclass(ARCHS[arch], raw, where=where)


# --- presets -----------------------------------------------------------------------------------------------------

_PRESETS: dict[str, Callable[[], ModelConfig | FocusVolumeConfig]] = {}
DEFAULT_MODEL = "focusvolume"  # the model focal ships (package data)


def _preset(fn: Callable[[], ModelConfig | FocusVolumeConfig]) -> Callable[[], ModelConfig | FocusVolumeConfig]:
    name = fn().name
    _PRESETS[name] = fn
    return fn


@_preset
def _base() -> ModelConfig:
    """The paper's network: patch 16, 384x384, width 768, 12 heads, 6 blocks, 3-layer LSTM of width 768.

    Block count: the paper reports 74.7 M parameters, split as stem 0.49 M, transformer 42.1 M, LSTM 15.2 M and
    decoder 16.9 M. A ViT-B block of width 768 holds 12 * 768^2 + 13 * 768 = 7.09 M parameters, so the usual 12
    blocks alone would hold 85 M, twice the reported transformer; 6 blocks hold 42.5 M, matching the table. We
    therefore take 6 blocks, with decoder skips from blocks 2, 3, 5 and 6 (evenly spaced, as DPT's 3/6/9/12 of 12).
    """
    return ModelConfig(name="focdepthformer-base")


@_preset
def _base_fd() -> ModelConfig:
    """The paper's network with focus-distance embedding and the metric head (depth in metres for any schedule)."""
    return ModelConfig(name="focdepthformer-base-fd", focus_distance_aware=True)


@_preset
def _small() -> ModelConfig:
    """CPU-sized, focus-distance aware: width 384, 6 blocks, 6 heads, 2-layer LSTM of 384, native 256x256."""
    return ModelConfig(name="focdepthformer-small", image_size=256, width=384, depth=6, heads=6, stem_branch=32,
                       stem_mid=128, stem_out=48, lstm_hidden=384, lstm_layers=2, decoder_channels=(48, 96, 192, 384),
                       decoder_features=128, focus_distance_aware=True)


@_preset
def _tiny() -> ModelConfig:
    """The default shipped model, trainable on CPU, focus-distance aware: width 192, 6 blocks, 3 heads, 2-layer
    LSTM of 192, native 256x256."""
    return ModelConfig(name="focdepthformer-tiny", image_size=256, width=192, depth=6, heads=3, stem_branch=16,
                       stem_mid=64, stem_out=32, lstm_hidden=192, lstm_layers=2, decoder_channels=(32, 64, 128, 192),
                       decoder_features=64, focus_distance_aware=True)


@_preset
def _focusvolume() -> FocusVolumeConfig:
    """Fast focus-volume network, the default model: learned multi-band focus measures on the luminance at three
    scales, a (2+1)-D U-Net over the focus volume (16-64 channels, strides 4-64), softmax over frames times
    diopters plus a residual; metres for any focus schedule, frame-index units without focus distances."""
    return FocusVolumeConfig(name="focusvolume")


def preset_names() -> list[str]:
    """Names of the registered presets."""
    return list(_PRESETS)


def preset_doc(name: str) -> str:
    """The preset's description (its docstring)."""
    get_config(name)
    return " ".join((_PRESETS[name].__doc__ or "").split())


def get_config(name: str) -> ModelConfig | FocusVolumeConfig:
    """The preset's config. Raises ``ConfigError`` for an unknown name."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown model {name!r}; use one of {', '.join(_PRESETS)}")
    return _PRESETS[name]()

