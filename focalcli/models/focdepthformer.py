"""FocDepthFormer (Kang et al., arXiv 2310.11178): configuration, wiring and the registry of named presets.

Per frame: multi-scale stem -> ViT encoder (tokens of four blocks). Across the stack: latent LSTM fusion of the
encoder output (focus-aware models add each frame's focus-distance embedding to its tokens there) and grouped
pooling of the shallower levels. Then a DPT-style decoder and either the paper's
regression head or, for focus-distance-aware presets, the metric focus head (softmax over frames x diopters).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from focalcli.checks import check_finite, check_range, check_shape
from focalcli.errors import ConfigError, InputError
from focalcli.models.decoder import DepthHead, DPTDecoder
from focalcli.models.encoder import FocusDistanceEmbedding, ViTEncoder
from focalcli.models.focus_head import FocusHead
from focalcli.models.fusion import LatentStackFusion
from focalcli.models.stem import MultiScaleStem

__all__ = ["DEFAULT_MODEL", "FocDepthFormer", "ModelConfig", "build_model", "default_focus_distances",
           "get_config", "preset_doc", "preset_names"]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a FocDepthFormer's architecture (weights files carry it as JSON)."""

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
        problems = []
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

    @classmethod
    def from_dict(cls, raw: dict) -> ModelConfig:
        """Strict: unknown keys and wrong types raise ``ConfigError``."""
        if not isinstance(raw, dict):
            raise ConfigError("model config must be a JSON object")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(unknown)}")
        values = {}
        for key, value in raw.items():
            default = getattr(cls, key)
            if isinstance(default, tuple):
                ok = isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in value)
                value = tuple(value) if ok else value
            elif isinstance(default, bool):
                ok = isinstance(value, bool)
            elif isinstance(default, float):
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                value = float(value) if ok else value
            else:
                ok = isinstance(value, type(default)) and not isinstance(value, bool)
            if not ok:
                raise ConfigError(f"model config key {key!r}: expected {type(default).__name__}, got {value!r}")
            values[key] = value
        return cls(**values)


def default_focus_distances(n: int, *, near_m: float, far_m: float, device=None) -> torch.Tensor:
    """The schedule assumed when a stack comes without focus distances: ``n`` distances uniform in diopters from
    ``near_m`` to ``far_m`` (``n = 1``: the dioptric middle). Shape ``(n,)``, metres."""
    if n == 1:
        return torch.tensor([2.0 / (1.0 / near_m + 1.0 / far_m)], device=device)
    return 1.0 / torch.linspace(1.0 / near_m, 1.0 / far_m, n, device=device)


class FocDepthFormer(nn.Module):
    """Focal stack -> depth.

    Args:
        config: the architecture.

    Shape:
        - frames: ``(B, N, 3, H, W)`` float sRGB in [0, 1], near to far, any N >= 1, any H and W (padded to a
          multiple of ``patch_size`` by edge replication, cropped back).
        - focus_distances_m: ``(B, N)`` metres, or None.
        - Output: depth ``(B, 1, H, W)`` in metres.

    Units: a focus-distance-aware model given focus distances outputs metric depth for any schedule. Given none,
    it assumes ``default_focus_distances`` and its output is *relative* (right in order and shape, not in scale);
    a regression (paper) model outputs metres only for stacks taken like its training data. ``is_metric`` says
    which case a call is in; ``focalcli.models.inference.predict_depth`` reports it with the depth.
    """

    def __init__(self, *, config: ModelConfig):
        super().__init__()
        c = config
        self.config = c
        self.stem = MultiScaleStem(branch_channels=c.stem_branch, mid_channels=c.stem_mid, out_channels=c.stem_out)
        self.encoder = ViTEncoder(in_channels=c.stem_out, patch_size=c.patch_size, image_size=c.image_size,
                                  width=c.width, depth=c.depth, heads=c.heads, mlp_ratio=c.mlp_ratio, hooks=c.hooks,
                                  global_grid=c.global_grid)
        self.focus_embed = FocusDistanceEmbedding(width=c.width) if c.focus_distance_aware else None
        self.fusion = LatentStackFusion(width=c.width, hidden=c.lstm_hidden, layers=c.lstm_layers,
                                        threshold=c.activation_threshold)
        self.decoder = DPTDecoder(width=c.width, channels=c.decoder_channels, features=c.decoder_features)
        if c.focus_distance_aware:
            self.head = FocusHead(features=c.decoder_features, stem_channels=c.stem_out, width=c.width,
                                  key_channels=c.key_channels)
        else:
            self.head = DepthHead(features=c.decoder_features)

    def is_metric(self, focus_distances_m: torch.Tensor | None) -> bool:
        """Whether ``forward`` with these focus distances gives metric depth for the stack's own schedule."""
        return self.config.focus_distance_aware and focus_distances_m is not None

    def validate_inputs(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None) -> None:
        """Check shapes and values (focus distances finite and positive); raise ``ShapeError``/``InputError``.

        The value checks read the tensors on the host (a device synchronisation), so ``predict_depth`` runs them
        once here, outside the forward pass (and outside a compiled region); ``forward(..., validate=False)`` then
        checks only shapes. Values on the ``meta`` device are not checked.
        """
        sizes = check_shape(frames, "B N 3 H W", "frames")
        if focus_distances_m is None:
            return
        fd = check_shape(focus_distances_m, "B N", "focus_distances_m")
        if (fd["B"], fd["N"]) != (sizes["B"], sizes["N"]):
            raise InputError(f"focus_distances_m has shape {tuple(focus_distances_m.shape)}, frames need "
                             f"({sizes['B']}, {sizes['N']})")
        if focus_distances_m.device.type != "meta":
            check_finite(focus_distances_m, "focus_distances_m")
            check_range(focus_distances_m, 1e-6, None, "focus_distances_m")

    def _diopters(self, focus_distances_m: torch.Tensor | None, B: int, N: int, frames: torch.Tensor):
        if focus_distances_m is None:
            c = self.config
            d = default_focus_distances(N, near_m=c.default_near_m, far_m=c.default_far_m, device=frames.device)
            return (1.0 / d).expand(B, N)  # (B, N)
        return 1.0 / focus_distances_m.float()  # (B, N)

    def forward(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                validate: bool = True) -> torch.Tensor:
        """Depth ``(B, 1, H, W)`` of stacks ``frames (B, N, 3, H, W)`` with ``focus_distances_m (B, N)`` or None.

        ``validate=False`` skips the value checks of ``validate_inputs`` (shapes are always checked): the forward
        pass then has no host synchronisation, as ``torch.compile`` and CUDA graphs need. Under ``torch.compile``
        the value checks are skipped whatever ``validate`` says.
        """
        if validate and not _compiling():
            self.validate_inputs(frames, focus_distances_m)
        sizes = check_shape(frames, "B N 3 H W", "frames")
        B, N, H, W = sizes["B"], sizes["N"], sizes["H"], sizes["W"]
        if focus_distances_m is not None and tuple(focus_distances_m.shape) != (B, N):
            raise InputError(f"focus_distances_m has shape {tuple(focus_distances_m.shape)}, frames need ({B}, {N})")
        p = self.config.patch_size
        diopters = self._diopters(focus_distances_m, B, N, frames)  # (B, N)
        Hp, Wp = -(-H // p) * p, -(-W // p) * p
        x = frames.reshape(B * N, 3, H, W)  # (BN, 3, H, W)
        if (Hp, Wp) != (H, W):
            x = F.pad(x, (0, Wp - W, 0, Hp - H), mode="replicate")  # (BN, 3, Hp, Wp)
        grid = (Hp // p, Wp // p)
        stem = self.stem(x)  # (BN, stem_out, Hp/4, Wp/4)
        levels = self.encoder(stem)  # 4 x (BN, T, D)
        T, D = levels[-1].shape[-2:]
        emb = self.focus_embed(diopters) if self.focus_embed is not None else None  # (B, N, D)
        fused = self.fusion([t.view(B, N, T, D) for t in levels], emb)  # 4 x (B, T, D)
        feats = self.decoder(fused, grid)  # (B, features, Hp/2, Wp/2)
        if self.focus_embed is not None:
            depth, _ = self.head(feats, stem, levels[-1], grid, diopters, (Hp, Wp))  # (B, 1, Hp, Wp)
        else:
            depth = self.head(feats, (Hp, Wp))  # (B, 1, Hp, Wp)
        return depth[..., :H, :W]


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return compiler.is_compiling()
    return False


# --- presets -----------------------------------------------------------------------------------------------------

_PRESETS: dict[str, Callable[[], ModelConfig]] = {}
DEFAULT_MODEL = "focdepthformer-tiny"  # the model focal ships (package data) once trained


def _preset(fn: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
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


def preset_names() -> list[str]:
    """Names of the registered presets."""
    return list(_PRESETS)


def preset_doc(name: str) -> str:
    """The preset's description (its docstring)."""
    get_config(name)
    return " ".join((_PRESETS[name].__doc__ or "").split())


def get_config(name: str) -> ModelConfig:
    """The preset's config. Raises ``ConfigError`` for an unknown name."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown model {name!r}; use one of {', '.join(_PRESETS)}")
    return _PRESETS[name]()


def build_model(model: str | ModelConfig) -> FocDepthFormer:
    """A freshly initialised model from a preset name or a config (on the default device; move it with ``.to``)."""
    config = get_config(model) if isinstance(model, str) else model
    return FocDepthFormer(config=config)
