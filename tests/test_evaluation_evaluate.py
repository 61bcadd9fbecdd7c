import math

import pytest
import torch

from focalcli.errors import ConfigError
from focalcli.evaluation.evaluate import classic_predictor, evaluate, score
from focalcli.evaluation.metrics import depth_metrics
from focalcli.train.data.ddff import DDFFSource
from tests.datasets_tiny import write_ddff_h5


def test_ddff_protocol_scores_disparity():
    gt = torch.tensor([[1.0, 2.0], [0.0, 4.0]])
    pred = torch.tensor([[2.0, 2.0], [3.0, 4.0]])
    m = score(pred, gt, "ddff")
    # disparities 0.14124 / depth: pred/gt ratio 0.5 at one pixel out of three valid
    assert m["abs_rel"] == pytest.approx(0.5 / 3)
    assert m["delta1"] == pytest.approx(2 / 3)


def test_fod500_protocol_clips_and_masks():
    gt = torch.tensor([[1.0, 2.0], [1.5, 0.5]])  # 2.0 m is outside the FoD500 range
    pred = torch.tensor([[1.0, 1.0], [3.0, 0.5]])  # 3.0 clips to 1.5
    m = score(pred, gt, "fod500")
    assert m["rmse"] == 0
    assert score(pred, gt, "metric")["rmse"] == pytest.approx(math.sqrt((1 + 2.25) / 4))


def test_unknown_protocol():
    with pytest.raises(ConfigError, match="unknown protocol"):
        score(torch.ones(2, 2), torch.ones(2, 2), "kitti")


def test_evaluate_averages_per_stack(tmp_path):
    src = DDFFSource(write_ddff_h5(tmp_path / "d.h5", n_val=3), split="val")

    def oracle_times(k):
        return lambda frames, focus: torch.full(frames.shape[2:], float(k))

    res = evaluate(src, oracle_times(2.0), protocol="metric", method="const")
    assert [r["name"] for r in res.rows] == ["val_0000", "val_0001", "val_0002"]
    rows = [depth_metrics(torch.full((12, 16), 2.0), src.item(i)["depth"][0]) for i in range(3)]
    for k in res.mean:
        assert res.mean[k] == pytest.approx(sum(r[k] for r in rows) / 3)
    out = res.to_json()
    assert out["count"] == 3 and set(out["mean"]) == set(rows[0]) and out["scale_aligned"] is False


def test_classic_predictor_runs(tmp_path):
    src = DDFFSource(write_ddff_h5(tmp_path / "d.h5", n_val=1), split="val")
    res = evaluate(src, classic_predictor(), protocol="ddff", method="classic")
    assert len(res.rows) == 1 and all(math.isfinite(v) for v in res.mean.values())
