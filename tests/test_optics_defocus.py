import math

import pytest
import torch
import torch.nn.functional as F

from focalcli.optics import defocus as D
from focalcli.optics import layered as L
from focalcli.optics import thinlens as T

F_M, N_F = 0.05, 2.0  # 50 mm f/2


def _render(img, depth, focus, pitch, **kw):
    """img (3, H, W) linear, depth (H, W) metres, focus list (m) -> (N, 3, H, W)."""
    fd = torch.tensor(focus, dtype=img.dtype)
    gain = T.coc_gain(fd, F_M, N_F) / pitch
    return D.render_defocus(img[None], (1 / depth)[None, None], (1 / fd)[None], gain[None], **kw)[0]


def _texture(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)[0].double()


def test_psf_kernels_normalised_with_disk_second_moment():
    r = torch.tensor([0.0, 3.0, 10.0], dtype=torch.float64)
    half = 20
    c = torch.arange(-half, half + 1, dtype=torch.float64)
    rho2 = c[None] ** 2 + c[:, None] ** 2
    for psf in D.PSFS:
        k = D.psf_kernels(r, half, psf, power=6.0)
        assert torch.allclose(k.sum(dim=(1, 2)), torch.ones(3, dtype=torch.float64))
        assert k[0, half, half] == pytest.approx(1.0)  # radius 0: unit impulse
        m2 = (k[2] * rho2).sum()
        assert float(m2) == pytest.approx(10.0**2 / 2, rel=0.03), psf
    with pytest.raises(ValueError):
        D.psf_kernels(r, 3, "box")


def test_srgb_round_trip():
    x = torch.linspace(0, 1, 101, dtype=torch.float64)
    assert torch.allclose(D.linear_to_srgb(D.srgb_to_linear(x)), x, atol=1e-9)
    assert float(D.srgb_to_linear(torch.tensor(0.5))) == pytest.approx(0.21404, abs=1e-4)


def test_fft_blur_matches_direct_convolution():
    img = _texture(40, 48)[None]  # (1, 3, H, W)
    k = D.psf_kernels(torch.tensor([10.0], dtype=torch.float64), 11)  # K = 23 > direct limit: FFT path
    out = D.blur_each(img, k)
    ref = F.conv2d(F.pad(img, (11,) * 4, mode="replicate"), k[:, None].repeat(3, 1, 1, 1), groups=3)
    assert torch.allclose(out, ref, atol=1e-10)


@pytest.mark.parametrize("method", ["layered", "gather"])
def test_plane_at_focus_distance_is_unchanged(method):
    img = _texture(32, 40)
    depth = torch.full((32, 40), 1.5, dtype=torch.float64)
    out = _render(img, depth, [0.8, 1.5, 4.0], 20e-6, method=method)
    assert torch.allclose(out[1], img, atol=1e-9)
    assert (out[0] - img).abs().max() > 0.01  # the other frames are blurred


def test_colour_edge_blur_width_matches_coc():
    img = torch.zeros(3, 16, 160, dtype=torch.float64)
    img[..., 80:] = 1.0
    depth = torch.full((16, 160), 2.0, dtype=torch.float64)
    c_m = T.coc_diameter(2.0, 1.0, F_M, N_F)
    pitch = c_m / 24.0  # CoC of 24 px
    p = _render(img, depth, [1.0], pitch)[0, 0, 8]  # (W,) profile across the edge
    lsf = p[1:] - p[:-1]  # line-spread function; a disk of radius R has std R / 2
    x = torch.arange(len(lsf), dtype=torch.float64)
    mean = (lsf * x).sum() / lsf.sum()
    std = torch.sqrt((lsf * (x - mean) ** 2).sum() / lsf.sum())
    assert float(4 * std) == pytest.approx(T.coc_pixels(2.0, 1.0, F_M, N_F, pitch), rel=0.05)


def test_depth_step_blur_width_matches_coc_and_keeps_the_near_side():
    # near white plane (1 m) on the left, far black plane (2 m) on the right, focused on the far plane
    img = torch.zeros(3, 16, 160, dtype=torch.float64)
    img[..., :80] = 1.0
    depth = torch.full((16, 160), 2.0, dtype=torch.float64)
    depth[:, :80] = 1.0
    pitch = T.coc_diameter(1.0, 2.0, F_M, N_F) / 30.0  # CoC of the near plane: 30 px
    p = _render(img, depth, [2.0], pitch)[0, 0, 8]
    # far side: the near plane's blurred alpha; for a disk of radius R its integral is 2R / (3 pi)
    radius = 1.5 * math.pi * float(p[80:].sum())
    assert radius == pytest.approx(15.0, rel=0.05)
    assert torch.all(p[:80] > 1 - 1e-6)  # the occluder itself is not darkened by the hole behind it


@pytest.mark.parametrize("focus", [1.0, 3.0])
def test_near_object_bleeds_without_dark_halo(focus):
    c_far, c_near = torch.tensor([0.2, 0.5, 0.8]), torch.tensor([0.9, 0.6, 0.3])
    img = c_far.double()[:, None, None].repeat(1, 64, 64)
    img[:, 20:44, 20:44] = c_near.double()[:, None, None]
    depth = torch.full((64, 64), 3.0, dtype=torch.float64)
    depth[20:44, 20:44] = 1.0
    pitch = T.coc_diameter(1.0, 3.0, F_M, N_F) / 16.0  # 16 px CoC for the near square when focused far
    out = _render(img, depth, [focus], pitch)[0]
    low = torch.minimum(c_far, c_near).double()[:, None, None]
    assert torch.all(out >= low - 1e-6), "dark halo"
    assert torch.all(out <= torch.maximum(c_far, c_near).double()[:, None, None] + 1e-6)
    if focus == 3.0:  # far in focus: the near square spills over the background by ~R = 8 px
        assert (out[:, 32, 44:48] - img[:, 32, 44:48]).abs().max() > 0.05
        assert torch.allclose(out[:, :, :10], img[:, :, :10], atol=1e-9)
    else:  # near in focus: a sharp occluder, the blurred background does not cover it
        assert torch.allclose(out[:, 20:44, 20:44], img[:, 20:44, 20:44], atol=1e-9)


def test_layered_and_gather_agree_away_from_edges():
    img = _texture(48, 96, seed=3)
    depth = torch.full((48, 96), 2.5, dtype=torch.float64)
    depth[:, :48] = 0.9
    pitch = T.coc_diameter(0.9, 2.5, F_M, N_F) / 10.0
    focus = [0.9, 1.4, 2.5]
    a = _render(img, depth, focus, pitch, method="layered")
    b = _render(img, depth, focus, pitch, method="gather")
    r_max = 6  # largest CoC radius in px is 5
    away = torch.ones(96, dtype=torch.bool)
    away[48 - r_max - 1 : 48 + r_max + 1] = False
    diff = (a - b)[..., away].abs()
    assert float(diff.mean()) < 2e-3 and float(diff.max()) < 0.03
    near_edge = (a - b)[..., 44:52].abs().max()
    assert near_edge > float(diff.max())  # they do differ where occlusion matters


def test_render_shapes_and_errors():
    img = torch.rand(2, 3, 12, 10)
    q = torch.rand(2, 1, 12, 10) + 0.5
    out = D.render_defocus(img, q, torch.tensor([[1.0, 0.5], [2.0, 0.7]]), torch.full((2, 2), 8.0))
    assert out.shape == (2, 2, 3, 12, 10) and out.dtype == torch.float32
    with pytest.raises(ValueError):
        D.render_defocus(img, q, torch.ones(2, 1), torch.ones(2, 1), method="scatter")


@pytest.mark.parametrize("method", ["layered", "gather"])
def test_gradcheck_render(method):
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 2, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    q = torch.ones(1, 1, 5, 6, dtype=torch.float64)
    q[..., 4:] = 2.0
    fq = torch.tensor([[1.3]], dtype=torch.float64)
    gain = torch.tensor([[3.0]], dtype=torch.float64, requires_grad=True)
    fn = lambda im, gn: D.render_defocus(im, q, fq, gn, method=method, layers=3)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (img, gain), atol=1e-6)


def test_gradcheck_fft_blur_and_kernels():
    img = torch.rand(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    radius = torch.tensor([7.3], dtype=torch.float64, requires_grad=True)
    fn = lambda im, r: D.blur_each(im, D.psf_kernels(r, 8, "disk"))  # noqa: E731  K = 17: FFT path
    assert torch.autograd.gradcheck(fn, (img, radius), atol=1e-6)
    fn = lambda r: D.psf_kernels(r, 8, "power", power=5.0)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (radius,))


# --- batching: every sample of a batch renders as it would alone, with the layered maths written plainly ------------


def reference_layered(img, q, fq, gain, psf="disk", power=8.0, layers=None, max_layers=32, step_px=1.0,
                      min_coarse=3.0):
    """One sample, one frame and one layer at a time (slow, obviously right). img (C, H, W), q (H, W), fq and
    gain (N,) -> (N, C, H, W)."""
    C, H, W = img.shape
    qmin, qmax = float(q.min()), float(q.max())
    span = qmax - qmin
    auto = int(min(max_layers, max(1, math.ceil(float(gain.max()) * span / 2 / step_px) + 1)))
    L = 1 if span <= 0 else (layers or auto)
    centres = [qmin] if L == 1 else [qmin + span * j / (L - 1) for j in range(L)]
    t = (q - qmin) / span * (L - 1) if L > 1 else torch.zeros_like(q)
    rgba = [torch.cat([img * a, a[None]]) for a in ((1 - (t - j).abs()).clamp_min(0) for j in range(L))]
    top = max(0, int(math.log2(max(1, min(H, W) // 8))))
    radii = [[float(gain[n]) * abs(float(fq[n]) - c) / 2 for c in centres] for n in range(len(fq))]

    def level(r):
        return 0 if min_coarse <= 0 else min(top, max(0, math.floor(math.log2(max(r / min_coarse, 1.0)))))

    def coarse(r):  # the radius at the blur's level, corrected for the two resamplings
        k = level(r)
        return r if k == 0 else math.sqrt(max(r**2 / 4**k - 1, 1e-12))

    reach = 1.0 if psf == "disk" else 1.7
    half = {}  # kernel support of a level: the largest radius this sample blurs there
    for r in (r for row in radii for r in row):
        half[level(r)] = max(half.get(level(r), 0), int(math.ceil(coarse(r) * reach)) + 1)
    frames = []
    for row in radii:
        acc = torch.zeros(C + 1, H, W, dtype=img.dtype)
        j = 0
        while j < L:  # a run of layers at one level, far to near, composited there and upsampled once
            k, s = level(row[j]), 2 ** level(row[j])
            run = None
            while j < L and level(row[j]) == k:
                x = F.avg_pool2d(F.pad(rgba[j][None], (0, -W % s, 0, -H % s), mode="replicate"), s)
                kern = D.psf_kernels(torch.tensor([coarse(row[j])], dtype=img.dtype), half[k], psf, power)
                x = D.blur_each(x, kern)[0]
                run = x if run is None else x + (1 - x[C:]) * run
                j += 1
            up = F.interpolate(run[None], size=(run.shape[-2] * s, run.shape[-1] * s), mode="bilinear",
                               align_corners=False)[0, :, :H, :W]
            acc = up + (1 - up[C:]) * acc
        frames.append(acc[:C] / acc[C:].clamp_min(1e-6))
    return torch.stack(frames)


def _batch(seed=0):
    """Three unlike samples: big blur on coarse levels (disk), flat depth (gaussian), focus beyond the scene
    (power: every frame's valley on a coarse level)."""
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(3, 3, 32, 36, generator=g, dtype=torch.float64)
    q = torch.ones(3, 1, 32, 36, dtype=torch.float64)
    q[0, :, :, 18:] = 2.0
    q[0, :, 10:20] = 1.5
    q[2] = 0.5 + torch.rand(1, 32, 36, generator=g, dtype=torch.float64) * 0.5
    fq = torch.tensor([[1.0, 1.6], [0.5, 1.2], [2.5, 4.0]], dtype=torch.float64)
    gain = torch.tensor([[24.0, 30.0], [20.0, 20.0], [12.0, 10.0]], dtype=torch.float64)
    return img, q, fq, gain, ["disk", "gaussian", "power"], [8.0, 8.0, 5.0]


@pytest.mark.parametrize("options", [{}, {"min_coarse": 0.0, "layers": 4}, {"min_coarse": 1.5, "step_px": 2.0}])
def test_batched_layered_equals_the_plain_per_frame_per_layer_reference(options):
    img, q, fq, gain, psfs, powers = _batch()
    out = D.render_defocus(img, q, fq, gain, psf=psfs, power=torch.tensor(powers), **options)
    assert out.shape == (3, 2, 3, 32, 36)
    for b in range(3):
        ref = reference_layered(img[b], q[b, 0], fq[b], gain[b], psfs[b], powers[b], **options)
        torch.testing.assert_close(out[b], ref, rtol=0, atol=1e-9)


def test_layered_multi_frame_chunks_equal_per_frame_chunks(monkeypatch):
    img, q, fq, gain, psfs, powers = _batch(1)
    per_frame = D.render_defocus(img, q, fq, gain, psf=psfs, power=powers)  # the CPU default: a frame per chunk
    monkeypatch.setitem(L.CHUNK_ELEMENTS, "cpu", 1 << 40)  # the GPU way: every frame of a step in one batch
    batched = D.render_defocus(img, q, fq, gain, psf=psfs, power=powers)
    monkeypatch.setitem(L.CHUNK_ELEMENTS, "cpu", 50_000)  # a few frames per chunk
    some = D.render_defocus(img, q, fq, gain, psf=psfs, power=powers)
    torch.testing.assert_close(batched, per_frame, rtol=0, atol=1e-12)
    torch.testing.assert_close(some, per_frame, rtol=0, atol=1e-12)


def test_batched_gather_equals_each_sample_alone():
    img, q, fq, gain, psfs, powers = _batch(2)
    out = D.render_defocus(img, q, fq, gain, method="gather", psf=psfs, power=powers)
    for b in range(3):
        alone = D.render_defocus(img[b : b + 1], q[b : b + 1], fq[b : b + 1], gain[b : b + 1], method="gather",
                                 psf=psfs[b], power=powers[b])
        torch.testing.assert_close(out[b], alone[0], rtol=0, atol=1e-12)
    assert (out[1] - img[1]).abs().max() > 0.01  # the flat sample is blurred too (it is out of focus)


def test_per_sample_psf_errors():
    img, q, fq, gain, _, _ = _batch()
    with pytest.raises(ValueError, match="one per sample"):
        D.render_defocus(img, q, fq, gain, psf=["disk", "disk"])
    with pytest.raises(ValueError, match="unknown PSF"):
        D.render_defocus(img, q, fq, gain, psf=["disk", "box", "disk"])
    with pytest.raises(ValueError, match="p >= 2"):
        D.render_defocus(img, q, fq, gain, psf="power", power=[8.0, 1.0, 3.0])


def test_gradcheck_layered_through_the_focus_distances():
    """Gradients also flow to the focus distances (then the compositing is not done in place)."""
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 2, 5, 6, generator=g, dtype=torch.float64)
    q = 1 + torch.rand(1, 1, 5, 6, generator=g, dtype=torch.float64)
    fq = torch.tensor([[1.3]], dtype=torch.float64, requires_grad=True)
    gain = torch.tensor([[3.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: D.render_defocus(img, q, f, gain, layers=3), (fq,), atol=1e-6)
