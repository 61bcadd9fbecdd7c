import math

import pytest
import torch
import torch.nn.functional as F

from focalcli.errors import ConfigError, ShapeError
from focalcli.models.heads import two_hot
from focalcli.train.losses import (
    diopter_l1_loss,
    frame_cross_entropy,
    get_loss,
    laplacian,
    mse_laplacian_loss,
    silog_gradient_loss,
)


def _depth(h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 1.0 + torch.rand(1, 1, h, w, generator=g) * 2


def test_laplacian_hand_computed():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    assert laplacian(pred)[0, 0].tolist() == [[3.0, 1.0], [-1.0, -3.0]]  # replicate padding


def test_mse_laplacian_is_the_papers_with_the_absolute_log_ratio():
    gt = _depth()
    pred = gt * 1.1
    mse = float(((pred - gt) ** 2).mean())
    # Laplacian variances on the interior (every pixel whose neighbours are valid: all here)
    ratio = math.log(float(laplacian(pred).var(unbiased=False)) / float(laplacian(gt).var(unbiased=False)))
    assert float(mse_laplacian_loss(pred, gt)) == pytest.approx(mse + 0.2 * abs(ratio), rel=1e-5)
    assert float(mse_laplacian_loss(gt, gt)) == pytest.approx(0.0, abs=1e-6)


def test_mse_laplacian_prefers_the_truth_to_a_blurred_depth():
    """The old term (0.2 x var(Lap pred), no ground truth) scored a blurred depth map better than the truth."""
    gt = _depth(32, 32)
    blurred = F.avg_pool2d(F.pad(gt, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    old = lambda p: float(((p - gt) ** 2).mean() + 0.2 * laplacian(p).var(unbiased=False))  # noqa: E731
    assert old(blurred) < old(gt)  # the bug
    assert float(mse_laplacian_loss(gt, gt)) < float(mse_laplacian_loss(blurred, gt))


def test_silog_is_scale_invariant_in_the_log():
    gt = torch.rand(2, 1, 8, 8) + 0.5
    assert float(silog_gradient_loss(gt * math.e, gt)) == pytest.approx(0.5, abs=1e-6)  # d = 1: 1 - 0.5
    assert float(silog_gradient_loss(gt, gt)) == pytest.approx(0.0, abs=1e-7)


def test_silog_gradient_hand_computed():
    gt = torch.ones(1, 1, 1, 3)
    pred = torch.tensor([1.0, 2.0, 1.0])[None, None, None]
    ln2 = math.log(2)
    silog = ln2**2 / 3 - 0.5 * (ln2 / 3) ** 2
    grad = (ln2 + ln2) / 2  # one scale: two horizontal pairs, no vertical ones
    assert float(silog_gradient_loss(pred, gt, scales=1)) == pytest.approx(silog + 0.5 * grad)


def test_diopter_l1_is_scale_fair():
    """The same error, as a fraction of the focus range, costs the same in a macro stack and in a room; MSE in
    metres would weigh them by ~10^4."""
    room = 1 / torch.linspace(1.0, 0.2, 5)[None]  # diopters 1 .. 0.2 -> positions (1, 5)
    macro = room * 40  # diopters 40 .. 8
    for positions in (room, macro):
        q_gt = torch.full((1, 1, 4, 4), float(positions.mean()))
        span = float(positions.max() - positions.min())
        q_pred = q_gt + 0.1 * span
        loss = diopter_l1_loss(1 / q_pred, 1 / q_gt, 1 / (1 / positions), True, grad_weight=0.0)
        assert float(loss) == pytest.approx(0.1, rel=1e-4)


def test_diopter_l1_clamps_and_down_weights_outside_the_focus_range():
    positions = torch.tensor([[4.0, 3.0, 2.0]])  # diopters: focus from 0.25 m to 0.5 m
    gt = 1 / torch.full((1, 1, 2, 2), 0.5)  # depth 2 m = 0.5 D, 1.5 D beyond the last plane (spacing 1 D)
    at_reach = 1 / torch.full((1, 1, 2, 2), 1.0)  # the head's limit: one spacing beyond (1 D)
    assert float(diopter_l1_loss(at_reach, gt, positions, True, grad_weight=0.0)) == pytest.approx(0.0, abs=1e-6)
    inside = 1 / torch.full((1, 1, 2, 2), 3.0)
    off = 1 / torch.full((1, 1, 2, 2), 3.5)
    err_inside = float(diopter_l1_loss(off, inside, positions, True, grad_weight=0.0))
    err_outside = float(diopter_l1_loss(1 / torch.full((1, 1, 2, 2), 1.5), gt, positions, True, grad_weight=0.0))
    assert err_inside == pytest.approx(0.25) and err_outside == pytest.approx(0.25)  # same |error| / span ...
    mixed = torch.cat([inside, gt], dim=-1)
    pred = torch.cat([off, 1 / torch.full((1, 1, 2, 2), 1.5)], dim=-1)
    # ... but the outside pixels weigh a quarter: (1 * 0.25 * 4 + 0.25 * 0.25 * 4) / (4 + 1)
    assert float(diopter_l1_loss(pred, mixed, positions, True, grad_weight=0.0)) == pytest.approx(0.25)


def test_two_hot_targets_and_cross_entropy():
    positions = torch.tensor([[3.0, 2.0, 1.0]])  # diopters, near to far
    depth = 1 / torch.tensor([2.25, 3.0, 0.5]).reshape(1, 1, 1, 3)  # between frames 1 and 0; on frame 0; beyond
    t, outside = two_hot(depth, positions, True)
    assert t[0, :, 0, 0].tolist() == pytest.approx([0.25, 0.75, 0.0])
    assert t[0, :, 0, 1].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert t[0, :, 0, 2].tolist() == pytest.approx([0.0, 0.0, 1.0]) and float(outside[0, 0, 0, 2]) == 0.5
    idx = torch.tensor([1.5, 2.0]).reshape(1, 1, 1, 2)  # frame-index units, 1-based
    ti, _ = two_hot(idx, torch.arange(3.0)[None], False)
    assert ti[0, :, 0, 0].tolist() == pytest.approx([0.5, 0.5, 0.0])
    good = torch.log(t.clamp_min(1e-6))
    bad = good.flip(1)
    assert float(frame_cross_entropy(good, depth, positions, True)) < float(
        frame_cross_entropy(bad, depth, positions, True))


def test_invalid_pixels_are_ignored():
    gt = torch.ones(1, 1, 4, 4)
    gt[..., 0, :] = 0
    gt[..., 1, 0] = float("nan")
    pred = torch.ones(1, 1, 4, 4)
    pred[..., 0, :] = 100.0
    out = {"depth": pred, "positions": torch.tensor([[2.0, 1.0, 0.5]]), "metric": True}
    for name in ("mse-laplacian", "silog-grad", "diopter-l1"):
        assert torch.isfinite(get_loss(name)(out, gt))
    assert float(silog_gradient_loss(pred, gt)) == 0
    assert float(get_loss("diopter-l1")(out, gt)) == pytest.approx(0.0, abs=1e-6)


def test_losses_backpropagate_and_check_shapes():
    pred = torch.rand(1, 1, 5, 5, requires_grad=True)
    gt = torch.rand(1, 1, 5, 5) + 0.1
    out = {"depth": pred + 0.1, "positions": torch.tensor([[10.0, 5.0, 1.0]]), "metric": True}
    (mse_laplacian_loss(pred, gt) + silog_gradient_loss(pred, gt) + get_loss("diopter-l1")(out, gt)).backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ShapeError):
        mse_laplacian_loss(torch.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4))
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss("l1")
    with pytest.raises(ConfigError, match="soft choice"):
        get_loss("diopter-l1")({"depth": pred, "positions": None, "metric": False}, gt)
