import numpy as np
import pytest
import torch
import torch.nn.functional as F

from focalcli.models import FocusVolumeConfig, build_model, get_config
from focalcli.models.focusvolume import frame_taps
from focalcli.models.focusvolume_numpy import FocusVolumeNumpy, upsample
from focalcli.models.heads import soft_position

SMALL = FocusVolumeConfig(bands=3, scales=3, widths=(4, 6, 8))


def _model(config=SMALL, seed=0):
    torch.manual_seed(seed)
    model = build_model(config).eval()
    with torch.no_grad():  # make every layer matter (the default init leaves the residual blocks near identity)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("size", [(32, 32), (37, 45)])
def test_forward_any_n_and_size(n, size):
    model = _model()
    frames = torch.rand(2, n, 3, *size)
    fd = 1 / torch.linspace(2.0, 0.5, n).expand(2, n)
    out = model.forward_train(frames, fd)
    assert out["depth"].shape == (2, 1, *size) and out["logits"].shape == (2, n, *size)
    assert out["metric"] and bool(torch.isfinite(out["depth"]).all())
    # without focus distances: frame-index units, 1 = nearest frame .. N = farthest (+- the residual's one spacing)
    with torch.no_grad():
        idx = model(frames)
    assert float(idx.min()) >= 0.0 - 1e-5 and float(idx.max()) <= n + 1 + 1e-5


def test_metric_for_any_schedule_by_construction():
    """Depth depends on the schedule only through the positions: two schedules with the same shape give depths
    that map onto each other exactly through their diopters."""
    model = _model()
    frames = torch.rand(1, 4, 3, 32, 32)
    a = 1 / torch.tensor([[2.0, 1.5, 1.0, 0.5]])  # diopters 0.5 .. 2
    b = 1 / (1 / a * 2)  # the same schedule at twice the diopters
    qa, qb = 1 / model(frames, a), 1 / model(frames, b)
    assert torch.allclose(qb, 2 * qa, rtol=1e-4)


def test_frame_taps_is_a_zero_padded_frame_convolution():
    B, N, C, h, w = 2, 5, 3, 4, 6
    x = torch.randn(B, N, C, h, w)
    weight = torch.randn(C, C, 3)  # (out, in, tap)
    ref = F.conv3d(x.transpose(1, 2), weight[..., None, None], padding=(1, 0, 0)).transpose(1, 2)  # (B, N, C, h, w)
    z = torch.cat([torch.einsum("oi,bnihw->bnohw", weight[..., k], x) for k in range(3)], dim=2)  # (B, N, 3C, h, w)
    assert torch.allclose(frame_taps(z.flatten(0, 1), N).view(B, N, C, h, w), ref, atol=1e-5)


def test_upsample_matches_torch():
    x = np.random.default_rng(0).standard_normal((3, 5, 7)).astype(np.float32)
    for f in (2, 4):
        ref = F.interpolate(torch.from_numpy(x)[None], scale_factor=f, mode="bilinear", align_corners=False)[0]
        assert np.allclose(upsample(x, f, (1, 2)), ref.numpy(), atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_numpy_twin_equals_torch(n):
    model = _model(FocusVolumeConfig(bands=4, scales=3, widths=(6, 8, 10)), seed=n)
    H, W = 48, 64  # a multiple of the stride (16)
    frames = torch.rand(1, n, 3, H, W)
    positions = 1 / torch.linspace(2.0, 0.7, n)[None] if n > 1 else torch.tensor([[1.5]])
    with torch.no_grad():
        ref = model.forward_train(frames, 1 / positions)
    twin = FocusVolumeNumpy(model.config, {k: v.numpy() for k, v in model.state_dict().items()})
    arr = frames[0].permute(0, 2, 3, 1).numpy()  # (N, H, W, 3)
    energies = np.stack([twin.frame_energies(f) for f in arr])
    image = np.mean([twin.frame_image(f) for f in arr], axis=0)
    logits, residual = twin.volume(energies, image, positions[0].numpy())
    assert np.allclose(logits, ref["logits"][0].numpy(), atol=2e-4)
    position, top = twin.position(logits, residual, positions[0].numpy())
    assert np.allclose(1 / position, ref["depth"][0, 0].numpy(), rtol=1e-4)
    assert top.shape == (H, W) and float(top.min()) >= 1 / n - 1e-6


def test_logits_are_bounded_so_the_softmax_cannot_collapse():
    """Unbounded logits let the softmax over frames go one-hot (zero gradients: a run at lr 5e-4 collapsed)."""
    _, weights = soft_position(torch.tensor([[[[1e4]], [[-1e4]]]]), torch.tensor([[2.0, 1.0]]), logit_bound=10.0)
    assert float(weights.min()) > 1e-9  # at least e^-20: never one-hot
    logits = torch.tensor([[[[6.0]], [[-6.0]]]], requires_grad=True)  # (1, 2, 1, 1): a confident pixel
    position, _ = soft_position(logits, torch.tensor([[2.0, 1.0]]), logit_bound=10.0)
    position.sum().backward()
    assert float(logits.grad.abs().min()) > 1e-8


def test_residual_reaches_beyond_the_end_planes():
    logits = torch.zeros(1, 3, 1, 1)
    positions = torch.tensor([[3.0, 2.0, 1.0]])  # diopters, near to far
    far, _ = soft_position(torch.tensor([[[[-30.0]], [[-30.0]], [[30.0]]]]), positions, torch.full((1, 1, 1, 1), -9.0))
    assert float(far) < 1.0  # beyond the farthest plane (1 D)
    mid, _ = soft_position(logits, positions, torch.zeros(1, 1, 1, 1))
    assert float(mid) == pytest.approx(2.0)


def test_preset_is_small():
    cfg = get_config("focusvolume")
    assert cfg.arch == "focusvolume"
    n = sum(p.numel() for p in build_model(cfg).parameters())
    assert 50_000 < n < 1_000_000
