"""Latent stack fusion: turns per-frame tokens into one token per position by looking across the focal stack.

Tokens at one spatial position over the N frames (ordered near to far) form a sequence. Following the paper, each
token is either *activated* or not by thresholding an L2 norm (0.4 in the paper):

- activated tokens go, in stack order, through an LSTM (focus-aware models add each frame's focus-distance
  embedding to its tokens here, so the LSTM knows where each frame was focused); its outputs (projected back to
  the token width) are max-pooled over the stack;
- the other tokens are averaged over the stack;
- the two results are blended by their counts: ``(sum of the rest + n_activated * pooled LSTM) / N``, so a
  position where nothing is activated gets the plain stack mean (and N = 1 gives the frame's own token).

**Which norm.** A fixed threshold on a raw token norm means nothing: the norm grows through the residual stream
and depends on width and initialisation, and after a plain LayerNorm every token has norm exactly sqrt(width). We
threshold the *focus-dependent* part of each token, in units of the stack's own typical variation:

    z[n, t] = LayerNorm(token[n, t]) - mean_t' LayerNorm(token[n, t'])   (no affine; the frame-wide part, such
                                                                          as an exposure change, is removed)
    d[n, t] = z[n, t] - mean_m z[m, t]                                   (change through the stack)
    score[n, t] = ||d[n, t]||_2 / sqrt(mean_{m, t'} ||d[m, t']||_2^2)    (relative to the stack's RMS change)

The root mean square of the scores over a stack is 1 whatever the width, the initialisation or the training
stage, so the paper's 0.4 reads: "this token changes through the stack by less than 40 % of the stack's typical
change" -> not activated (flat, textureless regions, where focus says nothing and the mean is right); the rest
(texture and edges passing through focus) go through the LSTM. A stack whose frames do not change at all (or
N = 1, or a single token per frame) activates nothing: the RMS change has a floor of 1e-5 per channel. A negative
threshold sends every token through the LSTM.

Everything is batched and free of host synchronisation (no ``nonzero``, ``.item()`` or data-dependent shapes,
so the forward pass can be captured by ``torch.compile`` or a CUDA graph): every position's sequence is permuted
so that its activated tokens come first (stack order kept), one LSTM call runs over the full-length sequences of
all positions, and a mask keeps the outputs of the activated steps for the max-pool. The LSTM is causal, so the
trailing non-activated steps cannot change the outputs of the activated ones; a position with none gets 0 from
the LSTM (its mean is what remains). There is no Python loop over tokens, positions or frames.

The decoder's shallower skip levels are reduced with the same grouping but without the LSTM: max over activated
tokens, mean over the rest, blended by counts (``group_pool``).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LatentStackFusion", "activation_scores", "group_pool"]


def activation_scores(x: torch.Tensor) -> torch.Tensor:
    """Each token's change through the stack relative to the stack's RMS change (see the module docstring).

    Each batch element is scored on its own.

    Shape:
        ``(B, N, T, D) -> (B, N, T)``.
    """
    D = x.shape[-1]
    off = torch.autocast(x.device.type, enabled=False) if x.device.type != "meta" else contextlib.nullcontext()
    with off:  # float32 whatever the caller's autocast (meta, for shapes only, has no autocast)
        z = F.layer_norm(x.float(), (D,))  # (B, N, T, D)
        z = z - z.mean(dim=2, keepdim=True)  # (B, N, T, D): frame-wide part removed
        change = (z - z.mean(dim=1, keepdim=True)).norm(dim=-1)  # (B, N, T)
        rms = change.square().mean(dim=(1, 2), keepdim=True).sqrt()  # (B, 1, 1)
        return change / rms.clamp_min(1e-5 * math.sqrt(D))  # (B, N, T)


def group_pool(x: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Max over activated tokens and mean over the rest, blended by their counts.

    Args:
        x: tokens ``(B, N, T, D)``.
        active: boolean ``(B, N, T)``.

    Shape:
        ``(B, N, T, D) -> (B, T, D)``.
    """
    N = x.shape[1]
    a = active[..., None]  # (B, N, T, 1)
    n_act = a.sum(dim=1).to(x.dtype)  # (B, T, 1)
    top = x.masked_fill(~a, float("-inf")).amax(dim=1)  # (B, T, D); -inf where nothing is activated
    top = torch.where(n_act > 0, top, torch.zeros_like(top))
    rest = x.masked_fill(a, 0).sum(dim=1)  # (B, T, D)
    return (rest + n_act * top) / N


class LatentStackFusion(nn.Module):
    """Token grouping + LSTM across the stack (see the module docstring).

    Args:
        width: token width D.
        hidden: LSTM hidden size.
        layers: LSTM layers.
        threshold: activation threshold on ``activation_scores`` (the paper's 0.4); negative: every token.

    Shape:
        - Input: a list of per-level tokens, each ``(B, N, T, D)``; the last level is the encoder output.
          Optional ``frame_embedding (B, N, D)``, added to the LSTM's inputs (not to the scores or the mean).
        - Output: a list of the same length, each ``(B, T, D)``: the last level fused with the LSTM, the others
          with ``group_pool``.
    """

    def __init__(self, *, width: int, hidden: int, layers: int, threshold: float):
        super().__init__()
        self.threshold = threshold
        self.lstm = nn.LSTM(width, hidden, num_layers=layers, batch_first=True)
        self.proj = nn.Linear(hidden, width)

    def active(self, x: torch.Tensor) -> torch.Tensor:
        """Boolean ``(B, N, T)``: which tokens are activated."""
        if self.threshold < 0:
            return torch.ones(x.shape[:3], dtype=torch.bool, device=x.device)
        return activation_scores(x) > self.threshold

    def fuse(self, x: torch.Tensor, active: torch.Tensor, frame_embedding: torch.Tensor | None = None) -> torch.Tensor:
        """LSTM fusion of one level. ``x (B, N, T, D)``, ``active (B, N, T)``, ``frame_embedding (B, N, D)`` added
        to the LSTM's inputs -> ``(B, T, D)``."""
        B, N, T, D = x.shape
        x_in = x if frame_embedding is None else x + frame_embedding[:, :, None].to(x.dtype)  # (B, N, T, D)
        seq = x_in.permute(0, 2, 1, 3).reshape(B * T, N, D)  # (BT, N, D): one sequence per position
        act = active.permute(0, 2, 1).reshape(B * T, N)  # (BT, N)
        n_act = act.sum(dim=1)  # (BT,)
        steps = torch.arange(N, device=x.device)
        # activated frames first, each group in stack order: sort by (not activated, frame index)
        order = ((~act).long() * N + steps).argsort(dim=1)  # (BT, N)
        h, _ = self.lstm(seq.gather(1, order[..., None].expand(-1, -1, D)))  # (BT, N, hidden)
        y = self.proj(h)  # (BT, N, D)
        valid = steps[None] < n_act[:, None]  # (BT, N): the activated steps
        pooled = y.masked_fill(~valid[..., None], float("-inf")).amax(dim=1)  # (BT, D); -inf: nothing activated
        pooled = torch.where(n_act[:, None] > 0, pooled, torch.zeros_like(pooled)).to(x.dtype)  # (BT, D)
        tokens = x.permute(0, 2, 1, 3).reshape(B * T, N, D)  # (BT, N, D) without the embedding
        rest = tokens.masked_fill(act[..., None], 0).sum(dim=1)  # (BT, D)
        out = (rest + n_act[:, None].to(x.dtype) * pooled) / N  # (BT, D)
        return out.view(B, T, D)

    def forward(self, levels: list[torch.Tensor], frame_embedding: torch.Tensor | None = None) -> list[torch.Tensor]:
        *skips, last = levels
        out = [group_pool(x, self.active(x)) for x in skips]
        out.append(self.fuse(last, self.active(last), frame_embedding))
        return out
