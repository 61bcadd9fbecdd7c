import math

import numpy as np
import pytest
import torch

from focalcli.errors import ShapeError
from focalcli.evaluation.metrics import METRIC_KEYS, depth_metrics, hessian_norm, mean_metrics


def test_hand_computed_values():
    gt = torch.tensor([[1.0, 2.0], [4.0, 0.0]])  # the 0 is invalid
    pred = torch.tensor([[1.5, 2.0], [2.0, 5.0]])
    m = depth_metrics(pred, gt)
    assert list(m) == list(METRIC_KEYS)
    assert m["abs_rel"] == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert m["sq_rel"] == pytest.approx((0.25 + 0 + 1.0) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0.25 + 0 + 4.0) / 3))
    assert m["log_rmse"] == pytest.approx(math.sqrt((math.log(1.5) ** 2 + math.log(0.5) ** 2) / 3))
    # ratios 1.5, 1, 2
    assert m["delta1"] == pytest.approx(1 / 3)
    assert m["delta2"] == pytest.approx(2 / 3)
    assert m["delta3"] == pytest.approx(2 / 3)
    # error map [[0.5, 0], [-2, 0]]: |dyx| = |dxy| = 2.5 everywhere, so the norm clips at 0.05 -> 5.0
    assert m["bump"] == pytest.approx(5.0)


def test_bumpiness_of_a_parabola():
    x = torch.arange(5.0, dtype=torch.float64)
    err = 0.01 * x**2 * torch.ones(5, 1)  # (5, 5), varies along W only
    gt = torch.full((5, 5), 2.0, dtype=torch.float64)
    # numpy.gradient twice along W: [1, 1.5, 2, 1.5, 1] * 0.01, mean 0.014, x 100
    assert depth_metrics(gt + err, gt)["bump"] == pytest.approx(1.4)


def test_hessian_matches_numpy_gradient():
    e = np.random.default_rng(0).normal(size=(6, 7))
    dy, dx = np.gradient(e)
    dyy, dyx = np.gradient(dy)
    dxy, dxx = np.gradient(dx)
    ref = np.sqrt(dxx**2 + dxy**2 + dyx**2 + dyy**2)
    np.testing.assert_allclose(hessian_norm(torch.from_numpy(e)).numpy(), ref, rtol=1e-12)


def test_mask_and_batch_shapes():
    gt = torch.rand(1, 1, 8, 8) + 0.5
    pred = gt * 1.1
    m = depth_metrics(pred, gt, mask=torch.ones(8, 8, dtype=torch.bool))
    assert m["abs_rel"] == pytest.approx(0.1)
    assert m["delta1"] == 1.0
    mask = torch.zeros(8, 8, dtype=torch.bool)
    assert all(math.isnan(v) for v in depth_metrics(pred, gt, mask=mask).values())


def test_perfect_prediction():
    gt = torch.rand(6, 6) + 0.5
    m = depth_metrics(gt.clone(), gt)
    assert m["rmse"] == 0 and m["bump"] == 0 and m["delta1"] == 1


def test_shape_errors():
    with pytest.raises(ShapeError, match="differ"):
        depth_metrics(torch.ones(4, 4), torch.ones(4, 5))
    with pytest.raises(ShapeError, match="one image"):
        depth_metrics(torch.ones(2, 1, 4, 4), torch.ones(2, 1, 4, 4))


def test_mean_metrics_skips_nan():
    a = dict.fromkeys(METRIC_KEYS, 1.0)
    b = dict.fromkeys(METRIC_KEYS, 3.0)
    c = dict.fromkeys(METRIC_KEYS, float("nan"))
    assert mean_metrics([a, b, c]) == dict.fromkeys(METRIC_KEYS, 2.0)
