import pytest
import torch

from focalcli.data import sample_generator
from focalcli.train.augment import AugmentOptions, augment, sensor_noise, subset_frames


def _sample(n=16, h=8, w=8):
    frames = torch.linspace(0.1, 0.9, n)[:, None, None, None].expand(n, 3, h, w).clone()
    return {"frames": frames, "focus_distances_m": 1 / torch.linspace(2.0, 0.1, n),
            "depth": torch.arange(h * w, dtype=torch.float32).reshape(1, h, w) + 1}


@pytest.mark.parametrize("n", [1, 2, 5, 16])
def test_subsets_are_sub_schedules(n):
    s = _sample()
    for i in range(20):
        out = subset_frames(s, n, sample_generator(0, i))
        fd = out["focus_distances_m"]
        assert out["frames"].shape[0] == n and fd.shape == (n,)
        assert bool((fd.diff() > 0).all())  # still near to far, no repeats
        idx = [int(torch.nonzero(s["focus_distances_m"] == d)[0]) for d in fd]
        assert torch.equal(out["frames"], s["frames"][idx])  # frames follow their focus distances


def test_subsets_vary_range_and_spacing():
    s = _sample()
    spans = {float(subset_frames(s, 4, sample_generator(1, i))["focus_distances_m"].log().diff().sum())
             for i in range(30)}
    assert len(spans) > 5


def test_noise_is_camera_like_and_seeded():
    frames = torch.full((2, 3, 64, 64), 0.5)
    a = sensor_noise(frames, 1e-3, 2e-3, 8, sample_generator(0, 0))
    b = sensor_noise(frames, 1e-3, 2e-3, 8, sample_generator(0, 0))
    assert torch.equal(a, b)
    assert torch.allclose(a * 255, (a * 255).round(), atol=1e-4)  # 8-bit levels
    assert 0.01 < float(a.std()) < 0.1 and abs(float(a.mean()) - 0.5) < 0.01
    dark = sensor_noise(torch.full((1, 3, 64, 64), 0.05), 1e-3, 2e-3, 0, sample_generator(0, 1))
    bright = sensor_noise(torch.full((1, 3, 64, 64), 0.9), 1e-3, 2e-3, 0, sample_generator(0, 1))
    assert float(bright.std()) < float(dark.std())  # sRGB's steep toe makes shadows the noisiest


def test_augment_keeps_frames_and_depth_together():
    s = _sample(n=6)
    out = augment(s, sample_generator(2, 3), 6, AugmentOptions(noise=False, jpeg=0.0))
    # rotations / flips move frames and depth alike: the pixel that holds depth value v holds the same frames
    v = out["depth"][0]
    src = s["depth"][0]
    y, x = (int(t) for t in torch.nonzero(v == src[0, 0])[0])
    assert torch.equal(out["frames"][:, :, y, x], s["frames"][:, :, 0, 0])
    clean = augment(s, sample_generator(2, 3), 6, AugmentOptions(noise=False, rotate=False, subsets=False, jpeg=0.0))
    assert torch.equal(clean["frames"], s["frames"])


def test_jpeg_round_trip_adds_block_artefacts_only():
    from focalcli.train.augment import jpeg_frames
    from tests.synthetic import texture

    frames = torch.from_numpy(texture(32, 32)).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)  # a natural-ish texture
    low, high = jpeg_frames(frames, 40), jpeg_frames(frames, 98)
    assert low.shape == frames.shape and float(low.min()) >= 0 and float(low.max()) <= 1
    assert float((high - frames).abs().mean()) < float((low - frames).abs().mean())  # quality matters
    assert float((high - frames).abs().mean()) < 0.05  # chroma subsampling costs the colour noise of this texture
