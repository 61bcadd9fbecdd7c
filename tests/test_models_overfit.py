"""The network can learn: one tiny synthetic stack is overfit (loss down 10x) within 200 CPU steps."""

from __future__ import annotations

import pytest
import torch

from focalcli.models import build_model


def synthetic_stack(size: int, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A textured scene, left half at the nearest focus distance and right half at the farthest; each frame blurs
    each half by a box whose width grows with the defocus in diopters (as blur does)."""
    g = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 3, size, size, generator=g)
    fd = torch.linspace(0.3, 1.2, n)[None]  # (1, N) metres
    depth = torch.full((1, 1, size, size), float(fd[0, 0]))
    depth[..., size // 2 :] = float(fd[0, -1])
    frames = []
    for s in fd[0]:
        frame = torch.empty_like(texture)
        for half, d in ((slice(0, size // 2), fd[0, 0]), (slice(size // 2, size), fd[0, -1])):
            k = 1 + 2 * round(1.2 * abs(float(1 / s - 1 / d)))  # odd box width
            frame[..., half] = torch.nn.functional.avg_pool2d(texture, k, 1, k // 2, count_include_pad=False)[..., half]
        frames.append(frame)
    return torch.stack(frames, dim=1), fd, depth  # (1, N, 3, H, W), (1, N), (1, 1, H, W)


def overfit(name: str, size: int, steps: int, lr: float) -> tuple[float, float, int, torch.Tensor]:
    """Adam on MSE until the loss is 10x below its first value or ``steps`` run out."""
    torch.manual_seed(0)
    model = build_model(name).train()
    frames, fd, target = synthetic_stack(size, 3)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    first = best = None
    for step in range(1, steps + 1):  # noqa: B007 (reported)
        pred = model(frames, fd)
        loss = torch.nn.functional.mse_loss(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        value = loss.item()
        first = value if first is None else first
        best = value if best is None else min(best, value)
        if best < first / 10:
            break
    return first, best, step, pred.detach()


@pytest.mark.parametrize(("name", "lr"), [("focdepthformer-tiny", 1e-3), ("focdepthformer-small", 3e-4)])
def test_cpu_presets_overfit_one_stack(name, lr):
    first, best, step, pred = overfit(name, 32, steps=200, lr=lr)
    assert best < first / 10, (first, best, step)
    assert float(pred[..., :16].mean()) < float(pred[..., 16:].mean())  # near half nearer than far half


@pytest.mark.slow
def test_base_preset_overfits_one_stack():
    first, best, step, _ = overfit("focdepthformer-base", 64, steps=60, lr=1e-4)
    assert best < first / 10, (first, best, step)
