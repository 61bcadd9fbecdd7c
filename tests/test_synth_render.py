import pytest
import torch

from focalcli.errors import ConfigError, InputError, ShapeError
from focalcli.io.stack import Camera
from focalcli.synth.render import (
    SynthConfig,
    add_sensor_noise,
    fill_depth,
    render_frames,
    render_sample,
    render_stack,
)
from focalcli.synth.sampling import SampleParams

CAM = Camera(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=30.0)


def _scene(h=24, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(3, h, w, generator=g)
    depth = torch.full((1, h, w), 2.0)
    depth[..., : w // 2] = 1.0
    return rgb, depth


def test_render_stack_orders_frames_and_keeps_optics():
    rgb, depth = _scene()
    stack = render_stack(rgb, depth, CAM, torch.tensor([2.0, 1.0, 1.4]))
    assert stack.frames.shape == (3, 3, 24, 32) and stack.frames.dtype == torch.float32
    assert stack.focus_distances_m.tolist() == pytest.approx([1.0, 1.4, 2.0])
    assert stack.camera == CAM and stack.names[0] == "frame_00.png"
    # frame 0 is focused at 1 m: the left half is sharp (up to 8-bit quantisation), the right half is not
    assert (stack.frames[0, :, :, :10] - rgb[:, :, :10]).abs().max() <= 0.5 / 255 + 1e-6
    assert (stack.frames[0, :, :, 22:] - rgb[:, :, 22:]).abs().max() > 0.05
    assert torch.allclose(stack.frames * 255, torch.round(stack.frames * 255), atol=1e-3)  # 8-bit levels


def test_render_stack_rejects_bad_input():
    rgb, depth = _scene()
    with pytest.raises(ShapeError):
        render_stack(rgb[None], depth, CAM, torch.tensor([1.0]))
    with pytest.raises(InputError, match="differs"):
        render_stack(rgb, depth[..., :-1], CAM, torch.tensor([1.0]))
    with pytest.raises(InputError, match="no valid"):
        render_stack(rgb, torch.zeros_like(depth), CAM, torch.tensor([1.0]))
    with pytest.raises(InputError, match="exceed the focal length"):
        render_stack(rgb, depth, CAM, torch.tensor([0.04]))
    with pytest.raises(ConfigError):
        render_stack(rgb, depth, Camera(focal_length_mm=50.0), torch.tensor([1.0]))
    with pytest.raises(ConfigError, match="Generator"):
        render_stack(rgb, depth, CAM, torch.tensor([1.0]), config=SynthConfig(read_noise=0.01))
    with pytest.raises(ConfigError):
        SynthConfig(psf="box")


def test_noise_is_seeded_and_has_the_right_level():
    rgb = torch.full((3, 64, 64), 0.5)
    depth = torch.full((1, 64, 64), 1.0)
    cfg = SynthConfig(read_noise=0.01, bit_depth=0)
    a = render_stack(rgb, depth, CAM, torch.tensor([1.0]), config=cfg, generator=torch.Generator().manual_seed(3))
    b = render_stack(rgb, depth, CAM, torch.tensor([1.0]), config=cfg, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.frames, b.frames)
    # read noise of 0.01 in linear light; sRGB slope at linear 0.214 is ~1.0: std in sRGB ~ 0.01
    assert 0.006 < float((a.frames - 0.5).std()) < 0.016


def test_sixteen_bit_and_exposure():
    rgb, depth = _scene()
    stack = render_stack(rgb, depth, CAM, torch.tensor([1.0, 2.0]), config=SynthConfig(bit_depth=16),
                         exposure=torch.tensor([1.0, 0.5]))
    assert stack.bit_depth == 16
    assert float(stack.frames[1].mean()) < float(stack.frames[0].mean()) * 0.9


def test_fill_depth_fills_holes_and_keeps_values():
    depth = torch.full((1, 1, 20, 20), 2.0)
    depth[..., :, :10] = 1.0
    holes = depth.clone()
    holes[..., 5:8, 2:5] = 0.0
    holes[..., 12, 12] = float("nan")
    filled = fill_depth(holes)
    ok = holes > 0
    assert torch.equal(filled[ok], holes[ok])
    assert torch.all(torch.isfinite(filled)) and torch.all(filled > 0)
    assert float(filled[0, 0, 6, 3]) == pytest.approx(1.0)
    with pytest.raises(InputError):
        fill_depth(torch.zeros(1, 1, 4, 4))


def test_render_frames_batched_matches_single():
    rgb, depth = _scene()
    fd = torch.tensor([[1.0, 2.0], [1.2, 1.8]])
    gain = torch.full((2, 2), 20.0)
    batch = render_frames(torch.stack([rgb, rgb.flip(-1)]), torch.stack([depth, depth]), fd, gain)
    single = render_frames(rgb.flip(-1)[None], depth[None], fd[1:], gain[1:])
    assert batch.shape == (2, 2, 3, 24, 32)
    assert torch.allclose(batch[1], single[0])


def test_render_sample_crops_flips_and_keeps_holes():
    rgb, depth = _scene()
    depth[..., 0, 0] = 0.0
    params = SampleParams(camera=CAM, focus_distances_m=(1.0, 2.0), crop=(0, 0, 16, 20), flip=True,
                          color_gains=(1.0, 1.0, 1.0))
    stack, gt = render_sample(rgb, depth, params)
    assert stack.frames.shape == (2, 3, 16, 20) and gt.shape == (1, 16, 20)
    assert float(gt[0, 0, -1]) == 0.0  # the hole moved with the flip and stays invalid


def _batch3(seed=0):
    """Three samples with their own optics (one with holes in the depth)."""
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(3, 3, 24, 28, generator=g)
    depth = torch.full((3, 1, 24, 28), 2.0)
    depth[:, :, :, :14] = 1.0
    depth[1, :, 3:6, 3:6] = 0.0
    fd = torch.tensor([[1.0, 2.0], [1.2, 1.8], [0.9, 3.0]])
    gain = torch.tensor([[20.0, 20.0], [12.0, 16.0], [8.0, 30.0]])
    return rgb, depth, fd, gain


def test_render_frames_per_sample_psf_and_noise_equal_single_calls():
    rgb, depth, fd, gain = _batch3()
    kw = dict(psf=["disk", "gaussian", "power"], psf_power=torch.tensor([8.0, 8.0, 4.0]),
              shot_noise=torch.tensor([0.0, 1e-3, 2e-3]), read_noise=[2e-3, 0.0, 1e-3], noise_seed=[5, 6, 7],
              exposure=torch.tensor([[1.0, 0.9], [1.1, 1.0], [1.0, 1.0]]), config=SynthConfig(bit_depth=0))
    batch = render_frames(rgb, depth, fd, gain, **kw)
    for b in range(3):
        one = {k: (v[b : b + 1] if isinstance(v, torch.Tensor | list) else v) for k, v in kw.items()}
        alone = render_frames(rgb[b : b + 1], depth[b : b + 1], fd[b : b + 1], gain[b : b + 1], **one)
        torch.testing.assert_close(batch[b], alone[0], rtol=0, atol=1e-5)  # float32: FFT sizes differ
    clean = render_frames(rgb, depth, fd, gain, **{**kw, "shot_noise": 0.0, "read_noise": 0.0})
    assert 5e-4 < float((batch[0] - clean[0]).std()) < 5e-3  # read noise 2e-3 (linear) on sample 0


def test_noise_seed_gives_the_same_noise_in_any_batch():
    rgb, depth, fd, gain = _batch3()
    cfg = SynthConfig(read_noise=0.01, bit_depth=0)
    a = render_frames(rgb, depth, fd, gain, config=cfg, noise_seed=torch.tensor([1, 2, 3]))
    b = render_frames(rgb[2:], depth[2:], fd[2:], gain[2:], config=cfg, noise_seed=[3])
    c = render_frames(rgb, depth, fd, gain, config=cfg, noise_seed=torch.tensor([1, 2, 4]))
    torch.testing.assert_close(a[2], b[0], rtol=0, atol=1e-6)
    assert torch.equal(a[:2], c[:2]) and not torch.allclose(a[2], c[2])
    x = torch.full((2, 3, 8, 8), 0.5)
    noisy = add_sensor_noise(x, [0.0, 4e-4], [1e-2, 0.0], noise_seed=[1, 2])  # per-sample levels as lists
    assert 0.006 < float((noisy[0] - 0.5).std()) < 0.014 and 0.008 < float((noisy[1] - 0.5).std()) < 0.02
    assert torch.equal(add_sensor_noise(x, [0.0, 0.0], 0.0), x)


def test_render_frames_rejects_bad_per_sample_arguments():
    rgb, depth, fd, gain = _batch3()
    with pytest.raises(InputError, match="one seed per sample"):
        render_frames(rgb, depth, fd, gain, config=SynthConfig(read_noise=0.01), noise_seed=[1, 2])
    with pytest.raises(InputError, match="exposure"):
        render_frames(rgb, depth, fd, gain, exposure=torch.ones(3, 3))
    with pytest.raises(ConfigError, match="unknown PSF"):
        render_frames(rgb, depth, fd, gain, psf=["disk", "box", "disk"])
    with pytest.raises(InputError, match="read noise"):
        render_frames(rgb, depth, fd, gain, read_noise=[0.1, 0.2], noise_seed=[1, 2, 3])
    with pytest.raises(ConfigError, match="noise seeds"):
        render_frames(rgb, depth, fd, gain, shot_noise=torch.tensor([0.0, 0.0, 1e-3]))


def test_render_batch_equals_render_sample_with_the_same_seeds():
    from dataclasses import replace

    from focalcli.synth.batch import render_batch
    from focalcli.synth.render import crop_flip
    from focalcli.synth.sampling import SamplingRanges, sample_params

    ranges = replace(SamplingRanges(), crop=(20, 24), frames=(3, 3))
    scenes = [_scene(24, 32, seed=s) for s in range(3)]
    params = [sample_params(torch.Generator().manual_seed(s), d, ranges) for s, (_, d) in enumerate(scenes)]
    cfg = SynthConfig(bit_depth=0)
    prepared = [crop_flip(r, d, p) for (r, d), p in zip(scenes, params, strict=True)]
    frames, fd = render_batch(torch.stack([r for r, _ in prepared]), torch.stack([d for _, d in prepared]), params,
                              config=cfg, noise_seed=[10, 11, 12])
    for b, ((r, d), p) in enumerate(zip(scenes, params, strict=True)):
        stack, gt = render_sample(r, d, p, config=cfg, noise_seed=10 + b)
        torch.testing.assert_close(frames[b], stack.frames, rtol=0, atol=1e-5)
        torch.testing.assert_close(fd[b], stack.focus_distances_m)
        assert gt.shape == prepared[b][1].shape
