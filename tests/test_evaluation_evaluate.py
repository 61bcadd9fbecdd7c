import json
import math

import pytest
import torch

from focalcli.data.ddff import DDFFSource
from focalcli.errors import ConfigError
from focalcli.evaluation.evaluate import classic_predictor, evaluate, score
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


class _TwoPlanes:
    """An evaluation source with known answers: a plane at 1 m and one at 4 m (the second with a hole)."""

    name = "planes"

    def __len__(self):
        return 2

    def item(self, i):
        depth = torch.full((1, 4, 4), 1.0 if i == 0 else 4.0)
        if i == 1:
            depth[0, 0, 0] = 0.0  # invalid: not scored
        return {"frames": torch.zeros(3, 3, 4, 4), "focus_distances_m": torch.tensor([1.0, 2.0, 3.0]),
                "depth": depth, "name": f"plane{i}"}


def test_evaluate_averages_per_stack():
    res = evaluate(_TwoPlanes(), lambda frames, focus: torch.full(frames.shape[2:], 2.0), protocol="metric",
                   method="const")
    assert [r["name"] for r in res.rows] == ["plane0", "plane1"]
    # plane 0: |2 - 1| / 1 = 1, plane 1: |2 - 4| / 4 = 0.5; the stacks are averaged, not their pixels
    assert res.rows[0]["abs_rel"] == pytest.approx(1.0) and res.rows[1]["abs_rel"] == pytest.approx(0.5)
    assert res.mean["abs_rel"] == pytest.approx(0.75)
    assert res.mean["rmse"] == pytest.approx((1.0 + 2.0) / 2)
    assert res.mean["sq_rel"] == pytest.approx((1.0 + 1.0) / 2)  # (2-1)^2/1 and (2-4)^2/4
    assert res.mean["delta1"] == res.mean["delta2"] == res.mean["delta3"] == 0.0  # ratio 2 > 1.25^3 = 1.95
    out = res.to_json()
    assert out["count"] == 2 and set(out["mean"]) == set(res.rows[0]) - {"name"} and out["scale_aligned"] is False


def test_classic_predictor_runs(tmp_path):
    src = DDFFSource(write_ddff_h5(tmp_path / "d.h5", n_val=1), split="val")
    res = evaluate(src, classic_predictor(), protocol="ddff", method="classic")
    assert len(res.rows) == 1 and all(math.isfinite(v) for v in res.mean.values())


def test_a_predictor_with_a_camera_parameter_gets_the_stacks_optics(tmp_path):
    """``focal eval`` runs classic as ``focal predict`` does: with the optics stack.json records."""
    from focalcli.data.stacks import StackFolderSource
    from focalcli.io.stack import Camera
    from tests.datasets_tiny import write_stacks

    folder = write_stacks(tmp_path / "stacks", count=1)
    cam = Camera(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=5.0)
    meta = folder / "s0" / "stack" / "stack.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "camera": cam.to_json()}))
    seen = []

    def with_optics(frames, focus, camera=None):
        seen.append(camera)
        return torch.ones(frames.shape[2:])

    evaluate(StackFolderSource(folder), with_optics, protocol="metric")
    assert seen == [cam]
    plain = evaluate(StackFolderSource(folder), lambda frames, focus: torch.ones(frames.shape[2:]), protocol="metric")
    assert len(plain.rows) == 1


def test_classic_predictor_aligns_a_breathing_stack_as_predict_does():
    import numpy as np

    from tests.synthetic_align import breathing_stack

    frames, depth, focus = breathing_stack(step=0.006)
    x, f = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(1.0 * focus).float()
    inner = (slice(20, -20), slice(20, -20))
    err = {}
    for align in ("auto", "off"):
        d = classic_predictor(align=align)(x, f).numpy()
        assert np.isfinite(d).all()  # the ring that not every aligned frame covers is filled
        err[align] = float(np.mean(np.abs(d[inner] - depth[inner]) / depth[inner]))
    assert err["auto"] < 0.7 * err["off"], err
