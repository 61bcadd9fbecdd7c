"""FocDepthFormer (Kang et al., arXiv 2310.11178): the wiring of stem, encoder, fusion, decoder and heads.

Its configuration (``ModelConfig``) and the named presets live in ``focalcli.models.config``.

Per frame: multi-scale stem -> ViT encoder (tokens of four blocks). Across the stack: latent LSTM fusion of the
encoder output (focus-aware models add each frame's focus-distance embedding to its tokens there) and grouped
pooling of the shallower levels. Then a DPT-style decoder and either the paper's
regression head or, for focus-distance-aware presets, the metric focus head (softmax over frames x diopters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from focalcli.checks import check_shape
from focalcli.errors import InputError
from focalcli.models.config import ModelConfig
from focalcli.models.decoder import DepthHead, DPTDecoder
from focalcli.models.encoder import FocusDistanceEmbedding, ViTEncoder
from focalcli.models.focus_head import FocusHead
from focalcli.models.fusion import LatentStackFusion
from focalcli.models.heads import check_stack_inputs, frame_positions, position_to_depth
from focalcli.models.stem import MultiScaleStem

__all__ = ["FocDepthFormer", "ModelConfig", "default_focus_distances"]


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
        - Output: depth ``(B, 1, H, W)``.

    Units: a focus-distance-aware model given focus distances outputs metric depth for any schedule. Given none,
    its focus embedding sees ``default_focus_distances`` and its output is in frame-index units (1 = nearest frame,
    N = farthest), like the classic method's; a regression (paper) model outputs metres only for stacks taken like
    its training data, else *relative* depth. ``is_metric`` says whether a call is metric;
    ``focalcli.models.inference.predict_depth`` reports the units with the depth.
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

    def parts(self) -> dict[str, list[nn.Module]]:
        """The paper's four parts (the focus embedding counts to the encoder, the head to the decoder)."""
        return {"stem": [self.stem], "encoder": [self.encoder] + ([self.focus_embed] if self.focus_embed else []),
                "fusion": [self.fusion], "decoder": [self.decoder, self.head]}

    def is_metric(self, focus_distances_m: torch.Tensor | None) -> bool:
        """Whether ``forward`` with these focus distances gives metric depth for the stack's own schedule."""
        return self.config.focus_distance_aware and focus_distances_m is not None

    def validate_inputs(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None) -> None:
        """Check shapes and values (focus distances finite and positive); raise ``ShapeError``/``InputError``.

        The value checks read the tensors on the host (a device synchronisation), so ``predict_depth`` runs them
        once here, outside the forward pass (and outside a compiled region); ``forward(..., validate=False)`` then
        checks only shapes. Values on the ``meta`` device are not checked.
        """
        check_stack_inputs(frames, focus_distances_m)

    def _diopters(self, focus_distances_m: torch.Tensor | None, B: int, N: int, frames: torch.Tensor):
        if focus_distances_m is None:
            c = self.config
            d = default_focus_distances(N, near_m=c.default_near_m, far_m=c.default_far_m, device=frames.device)
            return (1.0 / d).expand(B, N)  # (B, N)
        return 1.0 / focus_distances_m.float()  # (B, N)

    def forward_train(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                      validate: bool = True) -> dict:
        """Depth and what the losses need: ``{"depth", "logits" (B, N, H, W) or None, "positions" (B, N) or None,
        "metric"}`` (logits and positions only for focus-distance-aware models).

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
        if self.focus_embed is None:
            depth = self.head(feats, (Hp, Wp))  # (B, 1, Hp, Wp)
            return {"depth": depth[..., :H, :W], "logits": None, "positions": None, "metric": False}
        # without focus distances the embedding sees the default schedule, the output is in frame-index units
        positions, metric = frame_positions(focus_distances_m, B, N, frames.device)  # (B, N)
        position, logits = self.head(feats, stem, levels[-1], grid, positions, (Hp, Wp))  # (B, 1, Hp, Wp)
        depth = position_to_depth(position, positions, metric)
        return {"depth": depth[..., :H, :W], "logits": logits[..., :H, :W], "positions": positions, "metric": metric}

    def forward(self, frames: torch.Tensor, focus_distances_m: torch.Tensor | None = None, *,
                details: bool = False, validate: bool = True):
        """Depth ``(B, 1, H, W)``; with ``details``, ``forward_train``'s dict (through ``__call__``, so DDP and
        hooks see the call). ``validate``: see ``forward_train``."""
        out = self.forward_train(frames, focus_distances_m, validate=validate)
        return out if details else out["depth"]


def _compiling() -> bool:
    """Whether ``torch.compile`` is tracing this call."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "is_compiling"):
        return compiler.is_compiling()
    return False
