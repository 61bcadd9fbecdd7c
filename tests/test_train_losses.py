import math

import pytest
import torch

from focalcli.errors import ConfigError, ShapeError
from focalcli.train.losses import get_loss, laplacian, mse_laplacian_loss, silog_gradient_loss


def test_mse_laplacian_hand_computed():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    gt = torch.tensor([[1.0, 1.0], [0.0, 2.0]])[None, None]  # (1, 0) invalid
    # replicate-padded Laplacian of pred: [[3, 1], [-1, -3]]
    assert laplacian(pred)[0, 0].tolist() == [[3.0, 1.0], [-1.0, -3.0]]
    mse = (0 + 1 + 4) / 3
    lap = torch.tensor([3.0, 1.0, -3.0])
    var = float((lap**2).mean() - lap.mean() ** 2)  # 56 / 9
    assert var == pytest.approx(56 / 9)
    assert float(mse_laplacian_loss(pred, gt)) == pytest.approx(mse + 0.2 * var)
    assert float(mse_laplacian_loss(pred, gt, alpha=0.0)) == pytest.approx(mse)


def test_mse_laplacian_averages_samples():
    gt = torch.rand(2, 1, 6, 6) + 1
    gt[1, :, :3] = 0  # fewer valid pixels in sample 1
    pred = gt + torch.randn(2, 1, 6, 6)
    both = mse_laplacian_loss(pred, gt)
    each = [mse_laplacian_loss(pred[i : i + 1], gt[i : i + 1]) for i in range(2)]
    assert float(both) == pytest.approx(float(sum(each) / 2))


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


def test_invalid_pixels_are_ignored():
    gt = torch.ones(1, 1, 4, 4)
    gt[..., 0, :] = 0
    gt[..., 1, 0] = float("nan")
    pred = torch.ones(1, 1, 4, 4)
    pred[..., 0, :] = 100.0
    for name in ("mse-laplacian", "silog-grad"):
        loss = get_loss(name)(pred, gt)
        assert torch.isfinite(loss)
    assert float(silog_gradient_loss(pred, gt)) == 0


def test_losses_backpropagate_and_check_shapes():
    pred = torch.rand(1, 1, 5, 5, requires_grad=True)
    gt = torch.rand(1, 1, 5, 5) + 0.1
    (mse_laplacian_loss(pred, gt) + silog_gradient_loss(pred, gt)).backward()
    assert torch.isfinite(pred.grad).all()
    with pytest.raises(ShapeError):
        mse_laplacian_loss(torch.ones(1, 2, 4, 4), torch.ones(1, 2, 4, 4))
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss("l1")
