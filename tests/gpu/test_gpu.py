"""GPU checks, run by ``make gpu-check`` (skipped without CUDA): the model, the renderer, training and evaluation on
CUDA against the CPU, and the device errors a user can cause."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.errors import DeviceError
from focalcli.models.inference import predict_depth
from focalcli.runtime import device_errors, resolve_device
from focalcli.synth.render import SynthConfig, render_frames
from tests.cli.asserts import assert_one_line_error
from tests.models_common import micro, stack

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
runner = CliRunner()


def _predict(folder, out, *extra):
    r = runner.invoke(app, ["predict", str(folder), "-o", str(out), "--method", "model", "--overwrite", *extra])
    assert r.exit_code == 0, r.stderr
    return np.load(out)


@pytest.mark.parametrize("weights", ["micro", "shipped"])
def test_predict_model_on_cuda_in_every_precision_matches_cpu(plane_stack, tmp_path, micro_weights, weights):
    folder, _ = plane_stack
    extra = ["--weights", str(micro_weights)] if weights == "micro" else []
    ref = _predict(folder, tmp_path / "cpu.npy", "--device", "cpu", *extra)
    # fp32: the same numbers as the CPU. bf16/fp16: the model's own sensitivity to precision (the shipped tiny
    # model's bf16 depth is ~9 % from its fp32 depth on this stack on a CPU too)
    low = 2e-2 if weights == "micro" else 0.15
    for device, precision, tolerance in [("cuda", "fp32", 1e-3), ("auto", "fp32", 1e-3), ("cuda:0", "bf16", low),
                                         ("cuda", "fp16", low)]:
        d = _predict(folder, tmp_path / "gpu.npy", "--device", device, "--precision", precision, *extra)
        rel = np.abs(d - ref) / ref
        assert float(rel.max() if precision == "fp32" else rel.mean()) < tolerance, (device, precision, rel.max())


def test_forward_has_no_host_sync():
    model = micro(True).cuda().eval()
    frames, fd = (t.cuda() for t in stack(2, 4, 64, 64))
    model.validate_inputs(frames, fd)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            model(frames, fd, validate=False)
            model(frames, None, validate=False)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def test_compiled_with_cuda_graphs_matches_eager():
    model = micro(True)
    frames, fd = (t.cuda() for t in stack(2, 4, 64, 64))
    other = frames.flip(-1)
    eager = predict_depth(model, frames, fd, precision="bf16").depth
    eager_other = predict_depth(model, other, fd, precision="bf16").depth
    first = predict_depth(model, frames, fd, precision="bf16", compile=True).depth
    second = predict_depth(model, other, fd, precision="bf16", compile=True).depth  # replays the graph
    torch.testing.assert_close(first, eager, rtol=2e-2, atol=0)  # the first output survives the replay
    torch.testing.assert_close(second, eager_other, rtol=2e-2, atol=0)


def _scenes(B=3, h=64, w=72):
    from focalcli.synth.procedural import dead_leaves

    scenes = [dead_leaves(torch.Generator().manual_seed(b), h, w) for b in range(B)]
    rgb, depth = torch.stack([s[0] for s in scenes]), torch.stack([s[1] for s in scenes])
    fd = torch.tensor([[0.6, 1.0, 2.0, 5.0]] * B) * torch.tensor([1.0, 1.1, 0.9])[:B, None]
    gain = torch.tensor([40.0, 60.0, 25.0])[:B, None].expand(B, 4).contiguous()
    return rgb, depth, fd, gain


@pytest.mark.parametrize("method", ["layered", "gather"])
def test_renderer_on_cuda_matches_cpu(method):
    rgb, depth, fd, gain = _scenes()
    kw = dict(psf=["disk", "gaussian", "power"], psf_power=[8.0, 8.0, 4.0], shot_noise=[1e-3, 2e-3, 0.0],
              read_noise=[2e-3, 1e-3, 3e-3], noise_seed=[7, 8, 9])
    for bits, limit in [(0, 1e-4), (8, 1 / 255 + 1e-6)]:
        cfg = SynthConfig(method=method, bit_depth=bits)
        cpu = render_frames(rgb, depth, fd, gain, config=cfg, **kw)
        gpu = render_frames(rgb.cuda(), depth.cuda(), fd.cuda(), gain.cuda(), config=cfg, **kw)
        diff = (gpu.cpu() - cpu).abs()
        assert float(diff.max()) <= limit and float((diff > 1e-4).float().mean()) < 1e-3, (bits, float(diff.max()))


def test_noise_bits_are_identical_on_cuda():
    from focalcli.synth.noise import counter_bits, counter_normal

    seeds = torch.tensor([0, 5, 2**40 + 3, -1])
    assert torch.equal(counter_bits(seeds.cuda(), 10_000).cpu(), counter_bits(seeds, 10_000))
    torch.testing.assert_close(counter_normal(seeds.cuda(), (3, 50, 50)).cpu(), counter_normal(seeds, (3, 50, 50)),
                               rtol=0, atol=1e-5)


def test_render_batch_on_cuda_equals_cpu_render_sample():
    from dataclasses import replace

    from focalcli.synth.batch import render_batch
    from focalcli.synth.procedural import dead_leaves
    from focalcli.synth.render import crop_flip, render_sample
    from focalcli.synth.sampling import SamplingRanges, sample_params

    ranges = replace(SamplingRanges(), crop=(48, 56), frames=(5, 5))
    scenes = [dead_leaves(torch.Generator().manual_seed(s), 64, 64) for s in range(4)]
    params = [sample_params(torch.Generator().manual_seed(s), d, ranges) for s, (_, d) in enumerate(scenes)]
    prepared = [crop_flip(r, d, p) for (r, d), p in zip(scenes, params, strict=True)]
    cfg = SynthConfig(bit_depth=0)
    frames, _ = render_batch(torch.stack([r for r, _ in prepared]).cuda(), torch.stack([d for _, d in prepared]).cuda(),
                             params, config=cfg, noise_seed=[1, 2, 3, 4])
    for b, ((r, d), p) in enumerate(zip(scenes, params, strict=True)):
        stack_, _ = render_sample(r, d, p, config=cfg, noise_seed=b + 1)  # what a CPU worker renders
        torch.testing.assert_close(frames[b].cpu(), stack_.frames, rtol=0, atol=1e-4)


def test_training_samples_rendered_on_cuda_equal_the_cpu_workers(tmp_path):
    """render = device on CUDA: a batch the workers prepared and the GPU renders equals the batch CPU workers render
    (render = workers), for RGB-D and procedural scenes, layered and gather, before and after 8-bit quantisation."""
    from focalcli.data import build_source, collate_samples, parse_data_spec, render_prepared
    from focalcli.train.augment import AugmentOptions
    from focalcli.train.mixture import MixtureDataset
    from tests.datasets_tiny import write_rgbd

    root = write_rgbd(tmp_path / "rgbd", h=96, w=128)
    for spec in ("procedural", f"synth:{root}"):
        src = build_source(parse_data_spec(spec), train=True, synth_options={"render_method": "mixed", "holdout": 0})
        for bits, limit in [(0, 1e-4), (8, 1 / 255 + 1e-6)]:
            kw = dict(seed=2, crop=(48, 48), n_frames=(4, 6), augment=AugmentOptions(bit_depth=bits))
            workers = MixtureDataset([src], [1.0], render="workers", **kw)
            device = MixtureDataset([src], [1.0], render="device", **kw)
            for step in range(2):
                keys = [(step, j) for j in range(3)]
                cpu = collate_samples([workers[k] for k in keys])
                gpu = render_prepared(collate_samples([device[k] for k in keys]), "cuda")
                assert gpu["frames"].is_cuda
                torch.testing.assert_close(gpu["focus_distances_m"].cpu(), cpu["focus_distances_m"])
                assert torch.equal(gpu["depth"].cpu(), cpu["depth"])
                diff = (gpu["frames"].cpu() - cpu["frames"]).abs()
                assert float(diff.max()) <= limit and float((diff > 1e-4).float().mean()) < 1e-3, (spec, bits, step)


def test_train_with_device_rendering_on_cuda(tmp_path):
    from focalcli.train.loop import train
    from tests.train_tiny import read_log, tiny_config

    synth = {"shapes": 6, "eval_size": 32, "eval_items": 1, "eval_frames": 3}
    cfg = tiny_config(None, data=("procedural",), synth_options=synth, steps=3, val_every=0, frames_min=2,
                      frames_max=3, device="cuda", amp=False, workers=1)
    assert cfg.render == "auto" and train(cfg, tmp_path / "gpu")["render"] == "device"
    cpu = train(replace(cfg, device="cpu", workers=0), tmp_path / "cpu")
    assert cpu["render"] == "workers"
    losses = [[r["loss"] for r in read_log(tmp_path / run) if "loss" in r] for run in ("gpu", "cpu")]
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-2)  # the same first batch and weights; TF32 convs


def test_train_with_amp_and_resume_on_cuda(tmp_path):
    from focalcli.train.checkpoint import load_checkpoint
    from focalcli.train.loop import train
    from tests.datasets_tiny import write_stacks
    from tests.train_tiny import read_log, tiny_config, train_killed_at

    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    cfg = tiny_config(data, steps=6, save_every=2, val_every=3, device="cuda", amp=True)
    train(cfg, tmp_path / "full")

    train_killed_at(cfg, tmp_path / "cut")
    assert train(cfg, tmp_path / "cut", resume=True)["start_step"] == 4
    full = {r["step"]: r["loss"] for r in read_log(tmp_path / "full") if "loss" in r}
    cut = {r["step"]: r["loss"] for r in read_log(tmp_path / "cut") if "loss" in r}
    assert sorted(cut) == list(range(6)) and all(np.isfinite(list(full.values())))
    # same data and weights after the resume; cuDNN's backward is not bit-reproducible between runs
    np.testing.assert_allclose([cut[s] for s in (4, 5)], [full[s] for s in (4, 5)], rtol=1e-2)
    state = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert state["step"] == 6 and all(t.device.type == "cpu" for t in state["model"].values())


def test_eval_on_cuda_matches_cpu(tmp_path, micro_weights):
    from tests.datasets_tiny import write_stacks

    data = write_stacks(tmp_path / "data", count=2, h=20, w=24)
    means = {}
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.json"
        r = runner.invoke(app, ["eval", "--weights", str(micro_weights), "--data", f"stacks:{data}", "--device",
                                device, "--json", str(out)])
        assert r.exit_code == 0, r.output
        means[device] = json.loads(out.read_text())["mean"]
    for key, value in means["cpu"].items():
        assert means["cuda"][key] == pytest.approx(value, rel=1e-3, abs=1e-6), key


def test_device_errors_on_cuda(tiny_stack, tmp_path, micro_weights):
    count = torch.cuda.device_count()
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{count}")
    with pytest.raises(DeviceError, match="out of memory on cuda"), device_errors("cuda"):
        torch.empty(1 << 50, device="cuda")  # 4 PiB
    r = runner.invoke(app, ["predict", str(tiny_stack), "-o", str(tmp_path / "d.npy"), "--method", "model",
                            "--weights", str(micro_weights), "--device", f"cuda:{count}"])
    assert_one_line_error(r, 4, "does not exist")
