import numpy as np
import pytest
import torch

from focalcli.data import build_source, parse_data_spec, sample_generator
from focalcli.errors import ConfigError
from focalcli.train.mixture import MixtureDataset
from tests.datasets_tiny import write_rgbd

SMALL = {"eval_size": 24, "eval_items": 2, "eval_frames": 3, "shapes": 6, "render_method": "gather"}


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
    assert item["frames"].shape == (3, 3, 20, 24) and item["depth"].shape == (1, 20, 24)  # long side eval_size
    fd = item["focus_distances_m"].tolist()  # the scene-agnostic default schedule, uniform in diopters
    assert fd == pytest.approx([0.6, 2 / (1 / 0.6 + 1 / 10), 10.0], rel=1e-4)
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

    from focalcli.train.mixture import StepBatchSampler

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


def _coc_change_px(params, depth) -> float:
    """Median over pixels and frame pairs of the change of the CoC diameter (px) between adjacent frames."""
    from focalcli.optics.thinlens import coc_gain

    fd = torch.tensor(params.focus_distances_m, dtype=torch.float64)
    cam = params.camera
    gain = coc_gain(fd, cam.focal_length_mm / 1000, cam.f_number) / (cam.pixel_pitch_um * 1e-6)  # (N,) px / diopter
    q = 1 / depth[depth > 0].double()
    coc = gain[:, None] * (1 / fd[:, None] - q[None]).abs()  # (N, P)
    return float(coc.diff(dim=0).abs().median())


def test_training_blur_is_the_blur_of_use(tmp_path):
    """Training crops are windows of a virtual image as wide as the model's working resolution, so the blur in
    pixels matches what the model sees at inference (a 10-frame F/2 stack of a 50 mm full-frame camera changes its
    blur by ~3-4 px per frame at 512 px). Old code set the pixel pitch to sensor width / crop width: ~0.4-1.4 px."""
    src = build_source(parse_data_spec("procedural"), train=True, synth_options={"shapes": 6})
    changes = []
    for i in range(60):
        params, _, depth = src.draw_params(sample_generator(3, i), (64, 64), 10)
        assert params.camera.pixel_pitch_um >= 1000 * 23.5 / 768 - 1e-6  # sensor width / at most 768 px
        changes.append(_coc_change_px(params, depth))
    assert 2.0 < float(np.median(changes)) < 12.0


def test_rgbd_crops_are_windows_of_a_virtual_image(tmp_path):
    root = write_rgbd(tmp_path / "rgbd", count=3, h=300, w=400)
    src = build_source(parse_data_spec(f"synth:{root}"), train=True,
                       synth_options={"holdout": 0, "image_width_px": [300.0, 300.0]})
    params, rgb, depth = src.draw_params(sample_generator(0, 1), (64, 64), 4)
    assert rgb.shape == (3, 64, 64) and depth.shape == (1, 64, 64)
    # the pixel pitch is the sensor width over the virtual width (300 px), not over the 64-px window
    assert 1000 * 23.5 / 300 - 1e-4 <= params.camera.pixel_pitch_um <= 1000 * 36 / 300 + 1e-4


def test_rendered_training_stacks_are_clean_for_the_augmentation():
    src = build_source(parse_data_spec("procedural"), train=True, synth_options={"shapes": 6,
                                                                              "render_method": "gather"})
    frames = src.draw(sample_generator(0, 0), (32, 32), 3)["frames"]
    levels = frames * 255
    assert float((levels - levels.round()).abs().max()) > 1e-3  # float, not yet quantised to 8 bits


def test_training_draws_look_like_use():
    """Stacks of 2-16 frames, mostly scene-agnostic schedules (bounds not at the depth's percentiles), 256-px
    windows and camera noise: old training drew 3-8 frames, percentile schedules only, 128-px crops, noise <= 2e-3."""
    from focalcli.train.augment import AugmentOptions
    from focalcli.train.config import TrainConfig

    cfg = TrainConfig()
    assert (cfg.frames_min, cfg.frames_max, cfg.crop) == (2, 16, 256)
    src = build_source(parse_data_spec("procedural"), train=True, synth_options={"shapes": 6})
    kinds = [src.draw_params(sample_generator(5, i), (32, 32), 6)[0].schedule.split(":")[0] for i in range(40)]
    assert 0.4 <= kinds.count("uniform") / len(kinds) <= 0.8  # scene-agnostic: bounds a photographer picks
    ds = MixtureDataset([src], [1.0], seed=0, crop=(32, 32), n_frames=(2, 16), augment=AugmentOptions())
    lengths = {ds.step_choice(step)[1] for step in range(200)}
    assert min(lengths) == 2 and max(lengths) == 16
    flat = torch.full((1, 3, 64, 64), 0.4)
    from focalcli.train.augment import sensor_noise

    assert float(sensor_noise(flat, 3e-3, 5e-3, 8, sample_generator(0, 0)).std()) > 0.02  # ISO-6400-like noise
