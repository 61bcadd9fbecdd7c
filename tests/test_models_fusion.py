"""Latent stack fusion: the batched token-grouping path equals a per-position loop; the activation score."""

from __future__ import annotations

import pytest
import torch

from focalcli.models.fusion import LatentStackFusion, activation_scores, group_pool


def tokens(B=2, N=6, T=10, D=16, seed=0, flat_noise=0.05) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, T, D, generator=g)
    x[:, :, :3] = x[:, :1, :3] + flat_noise * torch.randn(B, N, 3, D, generator=g)  # three nearly flat positions
    return x


def reference_fuse(module: LatentStackFusion, x, active, emb):
    """The paper's rule, one position at a time (slow, obviously right)."""
    B, N, T, D = x.shape
    out = torch.zeros(B, T, D)
    for b in range(B):
        for t in range(T):
            idx = [n for n in range(N) if active[b, n, t]]
            rest = [n for n in range(N) if not active[b, n, t]]
            total = x[b, rest, t].sum(0) if rest else torch.zeros(D)
            if idx:
                seq = x[b, idx, t] + (emb[b, idx] if emb is not None else 0)  # (k, D) in stack order
                h, _ = module.lstm(seq[None])
                total = total + len(idx) * module.proj(h[0]).amax(0)
            out[b, t] = total / N
    return out


@pytest.mark.parametrize("with_embedding", [False, True])
def test_batched_fusion_equals_per_position_loop(with_embedding):
    torch.manual_seed(0)
    module = LatentStackFusion(width=16, hidden=12, layers=2, threshold=0.4)
    x = tokens()
    emb = torch.randn(2, 6, 16) if with_embedding else None
    active = module.active(x)
    n = active.sum(1)
    assert active.any() and not active.all() and (n > 1).any() and (n < 6).any()  # every case occurs
    with torch.no_grad():
        fast = module.fuse(x, active, emb)
        slow = reference_fuse(module, x, active, emb)
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6)


def test_group_pool_equals_per_position_loop():
    x = tokens()
    active = activation_scores(x) > 0.4
    B, N, T, D = x.shape
    slow = torch.zeros(B, T, D)
    for b in range(B):
        for t in range(T):
            on, off = x[b, active[b, :, t], t], x[b, ~active[b, :, t], t]
            top = on.amax(0) if len(on) else torch.zeros(D)
            slow[b, t] = (off.sum(0) + len(on) * top) / N
    torch.testing.assert_close(group_pool(x, active), slow)


def test_scores_are_scale_free_and_flat_positions_stay_off():
    x = tokens(T=64, flat_noise=0.02)
    s = activation_scores(x)
    assert torch.allclose(s.square().mean(dim=(1, 2)), torch.ones(2), atol=1e-4)  # RMS 1 per stack
    torch.testing.assert_close(activation_scores(7.0 * x + 3.0), s, rtol=1e-4, atol=1e-4)
    assert not (s[:, :, :3] > 0.4).any()  # nearly flat through the stack: averaged
    assert (s[:, :, 3:] > 0.4).float().mean() > 0.8  # changing: through the LSTM


def test_nothing_changes_through_the_stack_gives_the_token():
    torch.manual_seed(0)
    module = LatentStackFusion(width=16, hidden=12, layers=1, threshold=0.4)
    x = torch.randn(1, 1, 10, 16).expand(1, 5, 10, 16)
    single = torch.randn(2, 1, 10, 16)
    with torch.no_grad():
        assert not module.active(x).any()
        torch.testing.assert_close(module([x])[0], x[:, 0])
        torch.testing.assert_close(module([single, single])[1], single[:, 0])  # N = 1


def test_negative_threshold_sends_everything_through_the_lstm():
    torch.manual_seed(0)
    module = LatentStackFusion(width=16, hidden=12, layers=1, threshold=-1.0)
    x = tokens()
    assert module.active(x).all()
    with torch.no_grad():
        torch.testing.assert_close(module.fuse(x, module.active(x)), reference_fuse(module, x, module.active(x), None),
                                   rtol=1e-5, atol=1e-6)
