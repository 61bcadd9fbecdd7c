import numpy as np
import pytest
import torch

from focalcli.errors import ConfigError
from focalcli.io.images import write_image
from focalcli.train.data import MixtureDataset, build_source, parse_data_spec, sample_generator

SMALL = {"eval_size": 24, "eval_items": 2, "eval_frames": 3, "shapes": 6, "render_method": "gather"}


def write_rgbd(root, count=4, h=40, w=48):
    rng = np.random.default_rng(0)
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for i in range(count):
        write_image(root / "rgb" / f"s{i}.png", rng.uniform(0, 1, (h, w, 3)).astype(np.float32))
        depth = rng.uniform(0.8, 3.0, (h, w)).astype(np.float32)
        depth[:2] = 0  # a hole
        np.save(root / "depth" / f"s{i}.npy", depth)
    return root


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in ("frames", "focus_distances_m", "depth"))


@pytest.mark.parametrize("spec", ["procedural", "synth:{root}"])
def test_draws_are_deterministic_per_generator(tmp_path, spec):
    root = write_rgbd(tmp_path / "rgbd")
    src = build_source(parse_data_spec(spec.format(root=root)), train=True, synth_options=SMALL)
    a = src.draw(sample_generator(1, 2), (16, 16), 4)
    assert a["frames"].shape == (4, 3, 16, 16) and a["depth"].shape == (1, 16, 16)
    assert bool((a["focus_distances_m"].diff() > 0).all())
    assert same(a, src.draw(sample_generator(1, 2), (16, 16), 4))
    assert not torch.equal(a["frames"], src.draw(sample_generator(1, 3), (16, 16), 4)["frames"])


def test_rgbd_holdout_split_and_eval_items(tmp_path):
    root = write_rgbd(tmp_path / "rgbd", count=4)
    opts = {**SMALL, "holdout": 2}
    train = build_source(parse_data_spec(f"synth:{root}"), train=True, synth_options=opts)
    val = build_source(parse_data_spec(f"synth:{root}"), train=False, synth_options=opts)
    assert {s.name for s in train.scenes}.isdisjoint({s.name for s in val.scenes})
    assert len(train) + len(val) == 4
    item = val.item(0)
    assert item["frames"].shape == (3, 3, 24, 24) and item["depth"].shape == (1, 24, 24)
    assert item["focus_distances_m"].tolist() == pytest.approx([0.5, 1 / 1.0625, 8.0], rel=1e-4)  # uniform diopters
    assert same(item, val.item(0))


def test_procedural_eval_is_fixed_and_unlike_training(tmp_path):
    src = build_source(parse_data_spec("procedural"), train=False, synth_options=SMALL)
    assert len(src) == 2 and same(src.item(1), src.item(1)) and src.item(1)["name"] == "procedural_0001"


def test_bad_synth_options():
    with pytest.raises(ConfigError, match="unknown key"):
        build_source(parse_data_spec("procedural"), train=True, synth_options={"fnumber": 2})
    with pytest.raises(ConfigError, match="must be"):
        build_source(parse_data_spec("procedural"), train=True, synth_options={"eval_size": "big"})


def test_synthetic_mixture_with_workers(tmp_path):
    from torch.utils.data import DataLoader

    from focalcli.train.data import StepBatchSampler

    src = build_source(parse_data_spec("procedural"), train=True, synth_options=SMALL)
    ds = MixtureDataset([src], [1.0], seed=0, crop=(16, 16), n_frames=(2, 4))
    one = list(DataLoader(ds, batch_sampler=StepBatchSampler(0, 3, 4), num_workers=0))
    two = list(DataLoader(ds, batch_sampler=StepBatchSampler(0, 3, 4), num_workers=2))
    ranks = [list(DataLoader(ds, batch_sampler=StepBatchSampler(0, 3, 4, r, 2), num_workers=0)) for r in (0, 1)]
    for s in range(3):
        assert torch.equal(one[s]["frames"], two[s]["frames"])
        assert torch.equal(one[s]["frames"], torch.cat([ranks[0][s]["frames"], ranks[1][s]["frames"]]))


def test_rgbd_crops_avoid_depth_holes(tmp_path):
    root = write_rgbd(tmp_path / "rgbd", count=2)
    depth = np.load(root / "depth" / "s1.npy")
    depth[:, 12:] = 0  # three quarters of the scene unknown
    np.save(root / "depth" / "s1.npy", depth)
    src = build_source(parse_data_spec(f"synth:{root}"), train=True, synth_options={**SMALL, "holdout": 0,
                                                                                  "min_valid": 0.5})
    for i in range(8):
        s = src.draw(sample_generator(0, i), (16, 16), 3)
        assert float((s["depth"] > 0).float().mean()) >= 0.5
