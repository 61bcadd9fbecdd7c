"""Synthetic training samples rendered in the loader workers or on the training device are the same samples."""

import pytest
import torch

from focalcli.data import build_source, collate_samples, is_prepared, parse_data_spec, render_prepared, sample_generator
from focalcli.errors import ConfigError
from focalcli.train.augment import AugmentOptions, augment_prepared
from focalcli.train.mixture import MixtureDataset
from tests.datasets_tiny import write_rgbd, write_stacks

# mixed: batches of layered and gather samples; a narrow virtual image keeps the blur (and the test) small
SMALL = {"shapes": 6, "render_method": "mixed", "holdout": 0, "image_width_px": [48.0, 64.0]}


def _pair(src, **kw):
    """The same mixture rendered in the workers and prepared for the device."""
    kw = {"seed": 1, "crop": (24, 24), "n_frames": (3, 5), **kw}
    return MixtureDataset([src], [1.0], render="workers", **kw), MixtureDataset([src], [1.0], render="device", **kw)


@pytest.mark.parametrize("spec", ["procedural", "synth:{root}"])
def test_workers_and_device_render_the_same_samples(tmp_path, spec):
    root = write_rgbd(tmp_path / "rgbd") if "root" in spec else None
    src = build_source(parse_data_spec(spec.format(root=root)), train=True, synth_options=SMALL)
    methods = set()
    for bits in (0, 8):  # before quantisation, and as training renders them (noise + 8 bits)
        workers, device = _pair(src, augment=AugmentOptions(bit_depth=bits))
        for step in (0, 1):
            keys = [(step, j) for j in range(3)]
            rendered = collate_samples([workers[k] for k in keys])
            prepared = collate_samples([device[k] for k in keys])
            assert is_prepared(prepared) and not is_prepared(rendered)
            assert all(p.shot_noise > 0 and p.read_noise > 0 for p in prepared["params"])
            methods.update(prepared["method"])
            out = render_prepared(prepared, "cpu")  # the whole batch at once, as the training device does
            assert torch.equal(out["depth"], rendered["depth"])
            assert torch.equal(out["focus_distances_m"], rendered["focus_distances_m"])
            diff = (out["frames"] - rendered["frames"]).abs()
            if bits == 0:
                assert float(diff.max()) < 2e-5  # measured: 5e-6
            else:  # a value on a rounding boundary may land one level away; measured: 2e-5 of the values
                assert float(diff.max()) <= 1 / 255 + 1e-6 and float((diff > 0).float().mean()) < 1e-3
    assert methods == {"layered", "gather"}


def test_noise_is_part_of_the_sample():
    """The noise comes from the sample's seed inside the render (not from torch.randn afterwards): noisy 8-bit
    frames, different from the clean render of the same scene, the same every time."""
    src = build_source(parse_data_spec("procedural"), train=True, synth_options={"shapes": 6,
                                                                              "render_method": "gather"})
    noisy, _ = _pair(src, augment=AugmentOptions())
    clean, _ = _pair(src, augment=AugmentOptions(noise=False))
    a, b = noisy[(0, 0)], clean[(0, 0)]
    assert torch.equal(a["frames"], noisy[(0, 0)]["frames"])
    levels = a["frames"] * 255
    assert float((levels - levels.round()).abs().max()) < 1e-4  # 8 bits
    assert 0.002 < float((a["frames"] - b["frames"]).abs().mean()) < 0.1


def test_augment_prepared_moves_colour_and_depth_together():
    src = build_source(parse_data_spec("procedural"), train=True, synth_options={"shapes": 6})
    s = src.prepare(sample_generator(0, 1), (16, 16), 3)
    rgb, depth = s["rgb"].clone(), s["depth"].clone()
    depth.view(-1)[:] = torch.arange(1, 257, dtype=torch.float32)  # every pixel labelled
    s = {**s, "depth": depth}
    seen = set()
    for i in range(8):
        out = augment_prepared(s, sample_generator(1, i), AugmentOptions(bit_depth=16))
        y, x = (int(t) for t in torch.nonzero(out["depth"][0] == 1)[0])
        assert torch.equal(out["rgb"][:, y, x], rgb[:, 0, 0])
        seen.add((y, x))
        p = out["params"]
        assert 1e-5 <= p.shot_noise <= 3e-3 and 2e-4 <= p.read_noise <= 5e-3 and out["bit_depth"] == 16
        assert out["noise_seed"].dtype == torch.int64 and not p.flip and p.crop is None
    assert len(seen) > 2  # corners move
    off = augment_prepared(s, sample_generator(1, 0), None)
    assert torch.equal(off["rgb"], rgb) and off["params"].shot_noise == off["params"].read_noise == 0
    assert off["bit_depth"] == 0


def test_stack_folders_are_rendered_samples_in_either_mode(tmp_path):
    src = build_source(parse_data_spec(f"stacks:{write_stacks(tmp_path / 'data', count=2, n=4)}"), train=True)
    workers, device = _pair(src, crop=(12, 12), n_frames=(2, 3), augment=AugmentOptions())
    for key in [(0, 0), (1, 1)]:
        a, b = workers[key], device[key]
        assert not is_prepared(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_render_mode():
    src = build_source(parse_data_spec("procedural"), train=True)
    with pytest.raises(ConfigError, match="render mode"):
        MixtureDataset([src], [1.0], seed=0, crop=(8, 8), render="gpu")


@pytest.mark.parametrize("method", ["layered", "gather"])
def test_rendering_commutes_with_rotations_and_flips(method):
    """Why the augmentation may rotate the scene before rendering: the rendered stack is the rotated render (every
    PSF is symmetric), so the clean stacks are those of rotating after rendering. Measured: <= 2e-5."""
    from dataclasses import replace

    from focalcli.synth.batch import render_batch
    from focalcli.synth.render import SynthConfig

    src = build_source(parse_data_spec("procedural"), train=True, synth_options=SMALL)
    s = src.prepare(sample_generator(5, 2), (32, 32), 4)
    params = [replace(s["params"], shot_noise=0.0, read_noise=0.0)]
    cfg = SynthConfig(method=method, bit_depth=0)
    rgb, depth = s["rgb"][None], s["depth"][None]  # (1, 3, H, W), (1, 1, H, W)
    ref, _ = render_batch(rgb, depth, params, config=cfg)  # (1, N, 3, H, W)
    for k, flip in [(1, False), (3, True)]:
        def move(x, k=k, flip=flip):
            x = x.rot90(k, (-2, -1))
            return x.flip(-1) if flip else x

        out, _ = render_batch(move(rgb), move(depth), params, config=cfg)
        torch.testing.assert_close(out, move(ref), rtol=0, atol=1e-4)
