import math

import pytest
import torch

from focalcli.optics import thinlens as T


def test_coc_formula_by_hand():
    # f = 50 mm, N = 2 -> A = 25 mm; s = 1 m, d = 2 m: c = A f / (s - f) * |d - s| / d
    c = T.coc_diameter(2.0, 1.0, 0.05, 2.0)
    assert c == pytest.approx(0.025 * 0.05 / 0.95 * 0.5, rel=1e-12)
    assert T.coc_diameter(1.0, 1.0, 0.05, 2.0) == 0.0
    assert T.aperture_diameter(0.05, 2.0) == pytest.approx(0.025)
    # in pixels with a 36 mm sensor 640 px wide (56.25 um)
    pitch = T.pixel_pitch_um(36.0, 640) * 1e-6
    assert T.pixel_pitch_um(36.0, 640) == pytest.approx(56.25)
    assert T.coc_pixels(2.0, 1.0, 0.05, 2.0, pitch) == pytest.approx(c / 56.25e-6)


def test_coc_is_linear_in_diopters():
    d = torch.tensor([0.4, 0.8, 1.5, 3.0, 100.0], dtype=torch.float64)
    s, f, n = 1.2, 0.035, 2.8
    k = T.coc_gain(s, f, n)
    assert torch.allclose(T.coc_diameter(d, s, f, n), k * (1 / s - 1 / d).abs(), rtol=1e-12)


@pytest.mark.parametrize("behind", [True, False])
def test_depth_from_coc_inverts(behind):
    d = torch.tensor([2.0, 3.0], dtype=torch.float64) if behind else torch.tensor([0.5, 0.8], dtype=torch.float64)
    c = T.coc_diameter(d, 1.0, 0.05, 2.0)
    assert torch.allclose(T.depth_from_coc(c, 1.0, 0.05, 2.0, behind=behind), d, rtol=1e-10)
    assert math.isinf(T.depth_from_coc(1.0, 1.0, 0.05, 2.0, behind=True))


def test_diopters_and_hyperfocal():
    assert T.distance_from_diopters(T.diopters(0.25)) == pytest.approx(0.25)
    h = T.hyperfocal_distance(0.05, 8.0, 30e-6)
    # a point at infinity has CoC = the limit when focused at the hyperfocal distance (minus f)
    assert T.coc_diameter(1e12, h, 0.05, 8.0) == pytest.approx(30e-6, rel=1e-3)


def test_schedule_uniform_in_diopters():
    fd = T.schedule_uniform_diopters(0.5, 4.0, 6)
    inv = 1 / fd.double()
    assert fd[0] == pytest.approx(0.5) and fd[-1] == pytest.approx(4.0, rel=1e-6)
    assert torch.all(fd[1:] > fd[:-1])
    steps = inv[:-1] - inv[1:]
    assert torch.allclose(steps, steps[0].expand_as(steps), rtol=1e-5)
    with pytest.raises(ValueError):
        T.schedule_uniform_diopters(2.0, 1.0, 3)


def test_schedule_fixed_sorts_and_rejects():
    assert T.schedule_fixed([2.0, 0.5, 1.0]).tolist() == [0.5, 1.0, 2.0]
    for bad in ([], [1.0, 1.0], [0.0, 1.0], [float("nan")]):
        with pytest.raises(ValueError):
            T.schedule_fixed(bad)


def test_schedule_depth_percentiles_ignores_holes():
    depth = torch.linspace(1.0, 3.0, 101)
    depth = torch.cat([depth, torch.zeros(50), torch.full((5,), float("nan"))])
    fd = T.schedule_depth_percentiles(depth, 4, 10, 90)
    assert fd[0] == pytest.approx(1.2, rel=1e-4) and fd[-1] == pytest.approx(2.8, rel=1e-4)
    with pytest.raises(ValueError):
        T.schedule_depth_percentiles(torch.zeros(10), 3)


def test_schedule_random_is_seeded_and_in_range():
    a = T.schedule_random(5, (0.5, 1.0), (3.0, 6.0), torch.Generator().manual_seed(1), jitter=0.3)
    b = T.schedule_random(5, (0.5, 1.0), (3.0, 6.0), torch.Generator().manual_seed(1), jitter=0.3)
    c = T.schedule_random(5, (0.5, 1.0), (3.0, 6.0), torch.Generator().manual_seed(2), jitter=0.3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.all(a[1:] > a[:-1])
    assert 0.4 < float(a[0]) < 1.2 and 2.5 < float(a[-1]) < 7.0



def test_schedule_random_without_jitter_is_even_in_diopters_between_the_drawn_bounds():
    fd = T.schedule_random(6, (0.5, 1.0), (3.0, 6.0), torch.Generator().manual_seed(3)).double()
    inv = 1 / fd
    assert torch.allclose(inv[:-1] - inv[1:], (inv[0] - inv[-1]) / 5, rtol=1e-5)
    assert 0.5 <= float(fd[0]) <= 1.0 and 3.0 <= float(fd[-1]) <= 6.0


def test_schedule_random_far_is_raised_above_near():
    fd = T.schedule_random(3, (2.0, 2.0), (1.0, 1.0), torch.Generator().manual_seed(0))
    assert float(fd[0]) == pytest.approx(2.0) and float(fd[-1]) == pytest.approx(2.1)


def test_schedule_random_jitter_moves_each_frame_by_at_most_its_fraction_of_the_step():
    """The bounds are drawn first and the jitter last, so the same seed gives the even schedule plus the offsets."""
    j = 0.4
    for seed in range(20):
        even = 1 / T.schedule_random(8, (0.3, 1.0), (2.0, 9.0), torch.Generator().manual_seed(seed)).double()
        moved = 1 / T.schedule_random(8, (0.3, 1.0), (2.0, 9.0), torch.Generator().manual_seed(seed),
                                      jitter=j).double()
        step = float(even[0] - even[1])
        offsets = moved - even
        assert float(offsets.abs().max()) <= j * step * (1 + 1e-4)
        assert float(offsets.abs().max()) > 0.05 * step  # it does move
        assert torch.all(moved[:-1] > moved[1:])  # order kept without sorting


@pytest.mark.parametrize("jitter", [-0.1, 0.5, 2.0])
def test_schedule_random_rejects_a_jitter_that_could_reorder_frames(jitter):
    with pytest.raises(ValueError, match="jitter"):
        T.schedule_random(4, (0.5, 1.0), (3.0, 6.0), torch.Generator().manual_seed(0), jitter=jitter)

def test_gradcheck_thinlens():
    d = torch.tensor([0.7, 2.0, 5.0], dtype=torch.float64, requires_grad=True)
    s = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    n = torch.tensor(2.8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(T.coc_diameter, (d, s, f, n))
    assert torch.autograd.gradcheck(T.coc_gain, (s, f, n))
    c = torch.tensor([1e-4, 3e-4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c, s: T.depth_from_coc(c, s, 0.05, 2.0, behind=False), (c, s))
