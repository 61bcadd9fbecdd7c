"""The reference (validation) renderer: optics, compositing and noise."""

import numpy as np
import pytest

from focalcli.bench.reference_render import (
    Optics,
    RenderOptions,
    add_sensor_noise,
    coc_diameter_px,
    fill_depth_holes,
    lens_psf,
    linear_to_srgb,
    render_frame,
    render_stack,
    srgb_to_linear,
)

OPTICS = Optics(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=100.0)
FLAT = RenderOptions(aberration=0.0)


def _texture(h=48, w=64, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


def test_srgb_round_trip():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)
    assert srgb_to_linear(np.float32(0.5)) == pytest.approx(0.2140, abs=1e-4)


def test_coc_is_the_thin_lens_formula_and_signed():
    d = np.array([0.5, 1.0, 2.0, 4.0])
    c = coc_diameter_px(d, 1.0, OPTICS)
    f, a = 0.05, 0.05 / 2.0
    expected = a * f / (1.0 - f) * (d - 1.0) / d / 100e-6
    np.testing.assert_allclose(c, expected, rtol=1e-5)
    assert c[0] < 0 and c[1] == 0 and c[2] > 0


def test_psf_sums_to_one_is_a_point_when_in_focus_and_shows_aberration():
    assert lens_psf(0.3).shape == (1, 1)
    for r in (1.0, 3.7, -6.2):
        k = lens_psf(r)
        assert k.sum() == pytest.approx(1.0, abs=1e-5) and k.shape[0] % 2 == 1
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-7)  # symmetric: correlation = convolution
    behind, front = lens_psf(8.0), lens_psf(-8.0)
    c = behind.shape[0] // 2
    assert behind[c, c] < behind[c, c + 7]  # brighter rim behind focus
    assert front[c, c] > front[c, c + 7]  # brighter centre in front of it


def test_holes_take_the_nearest_valid_depth():
    d = np.array([[1.0, 0.0, 0.0, 3.0]], np.float32)
    np.testing.assert_array_equal(fill_depth_holes(d), [[1.0, 1.0, 3.0, 3.0]])
    with pytest.raises(ValueError):
        fill_depth_holes(np.zeros((2, 2)))


def test_in_focus_plane_stays_sharp():
    img = _texture()
    out = render_frame(img, np.full(img.shape[:2], 1.5, np.float32), 1.5, OPTICS)
    np.testing.assert_allclose(out, img, atol=1e-5)


def _spot_radius(focus_m: float, depth_m: float) -> float:
    h = w = 81
    img = np.zeros((h, w, 3), np.float32)
    img[h // 2, w // 2] = 1.0
    out = render_frame(img, np.full((h, w), depth_m, np.float32), focus_m, OPTICS, FLAT)[..., 0]
    yy, xx = np.mgrid[:h, :w] - h // 2
    second = float((out * (xx**2 + yy**2)).sum() / out.sum())
    # a uniform disk of radius R has E[rho^2] = R^2 / 2; integrating over each pixel's area adds 2 x 1/12
    return (2.0 * (second - 1.0 / 6.0)) ** 0.5


def test_blur_radius_grows_linearly_in_diopters():
    depths = np.array([1.25, 1.6, 2.5, 5.0, 0.8, 0.6])
    dioptres = np.abs(1.0 / depths - 1.0)  # focus at 1 m
    radii = np.array([_spot_radius(1.0, d) for d in depths])
    expected = 0.5 * np.abs(coc_diameter_px(depths, 1.0, OPTICS))
    np.testing.assert_allclose(radii, expected, rtol=0.05)
    slope = radii / dioptres  # c = A f s / (s - f) * |1/s - 1/d|: linear in dioptres, same on both sides
    assert slope.std() / slope.mean() < 0.04
    assert slope.mean() == pytest.approx(0.5 * 0.025 * 0.05 / 0.95 / 100e-6, rel=0.04)


def test_uniform_colour_stays_uniform_whatever_the_depth():
    rng = np.random.default_rng(1)
    depth = rng.choice([0.4, 1.0, 3.0], size=(40, 50)).astype(np.float32)
    out = render_frame(np.full((40, 50, 3), 0.3, np.float32), depth, 1.0, OPTICS)
    np.testing.assert_allclose(out, 0.3, atol=1e-4)


def test_in_focus_background_beside_a_blurred_occluder_is_not_darkened():
    h, w = 40, 80
    img = np.zeros((h, w, 3), np.float32)
    img[:, : w // 2] = 0.2  # near object
    img[:, w // 2 :] = 0.8  # far background, in focus
    depth = np.where(np.arange(w) < w // 2, 0.3, 1.0)[None, :].repeat(h, 0).astype(np.float32)
    out = render_frame(img, depth, 1.0, OPTICS, FLAT)[..., 0]
    radius = 0.5 * abs(float(coc_diameter_px(np.float32(0.3), 1.0, OPTICS)))
    assert radius > 3
    background = out[:, w // 2 :]
    assert background.max() <= 0.8 + 1e-4  # no bright halo
    # the blurred occluder spills over the background (it is in front), so the background only gets darker
    # within its blur radius, and by no more than the occluder's own mix; away from it, exactly the background
    np.testing.assert_allclose(background[:, int(radius) + 2 :], 0.8, atol=1e-4)
    near = out[:, : w // 2 - int(radius) - 2]
    np.testing.assert_allclose(near, 0.2, atol=1e-4)  # and no dark band at the occluder's rim either
    assert out.min() >= 0.2 - 1e-4


def test_noise_has_the_poisson_gaussian_variance():
    rng = np.random.default_rng(0)
    x, shot, read = 0.25, 1e-3, 3e-3
    noisy = add_sensor_noise(np.full((400, 400), x, np.float32), shot, read, rng)
    assert noisy.mean() == pytest.approx(x, rel=0.01)
    assert noisy.var() == pytest.approx(shot * x + read**2, rel=0.05)
    assert np.array_equal(add_sensor_noise(np.full((4, 4), x), 0.0, 0.0, rng), np.full((4, 4), x))


def test_stack_is_8_bit_and_reproducible():
    img, depth = _texture(), np.full((48, 64), 1.0, np.float32)
    depth[:10] = 0.0  # a hole
    a = render_stack(img, depth, [0.8, 1.0, 2.0], OPTICS, shot=1e-3, read=1e-3, rng=np.random.default_rng(3))
    b = render_stack(img, depth, [0.8, 1.0, 2.0], OPTICS, shot=1e-3, read=1e-3, rng=np.random.default_rng(3))
    assert a.shape == (3, 48, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    sharp = np.abs(np.diff(a.astype(float), axis=2)).mean(axis=(1, 2, 3))
    assert sharp[1] > sharp[0] and sharp[1] > sharp[2]  # the frame focused on the plane is the sharpest
