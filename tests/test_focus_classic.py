import cv2
import numpy as np
import pytest

from focalcli.focus.classic import BLUR_STEP_CAP, all_in_focus, blur_step_px, classic_scales, depth_from_focus
from focalcli.focus.depth import PeakTracker, end_plane_shares, fill_weak, guided_filter, push_pull
from focalcli.focus.measures import MEASURES, estimate_noise, focus_measure, gaussian_blur, presmooth_sigma, to_gray
from focalcli.io.stack import Camera, scan_stack
from tests import synthetic
from tests.conftest import write_frames


def abs_rel(pred, gt, mask=None):
    mask = np.ones_like(gt, bool) if mask is None else mask
    return float(np.mean(np.abs(pred[mask] - gt[mask]) / gt[mask]))


@pytest.mark.parametrize("measure", MEASURES)
def test_slanted_plane_metric_depth(measure):
    frames, depth, focus = synthetic.slanted_plane()
    r = depth_from_focus(synthetic.as_focal_stack(frames, focus), measure=measure)
    assert r.units == "m" and r.depth.shape == depth.shape
    inner = np.zeros_like(depth, bool)
    inner[8:-8, 8:-8] = True  # the borders see only half a window
    err = abs_rel(r.depth, depth, inner)
    assert err < 0.05, f"{measure}: AbsRel {err:.4f}"


def test_sub_frame_interpolation_beats_argmax():
    frames, depth, focus = synthetic.slanted_plane(n=6)
    stack = synthetic.as_focal_stack(frames, focus)
    interp = depth_from_focus(stack).depth
    # nearest-frame depth: the focus distance of the frame with the highest measure
    ms = np.stack([focus_measure(to_gray(f), "laplacian", 5) for f in frames])
    argmax = focus[ms.argmax(0)]
    inner = (slice(8, -8), slice(8, -8))
    assert abs_rel(interp[inner], depth[inner]) < 0.6 * abs_rel(argmax[inner], depth[inner])


def test_step_planes_separate():
    frames, depth, focus = synthetic.step_planes()
    r = depth_from_focus(synthetic.as_focal_stack(frames, focus), smooth=2.0)
    w = depth.shape[1]
    assert abs(np.median(r.depth[:, 5 : w // 2 - 8]) - 0.6) < 0.03
    assert abs(np.median(r.depth[:, w // 2 + 8 : -5]) - 1.2) < 0.06


def test_unknown_distances_give_frame_index_units():
    frames, depth, focus = synthetic.slanted_plane(n=8)
    r = depth_from_focus(synthetic.as_focal_stack(frames, None))
    assert r.units == "frame_index" and not r.metric
    assert r.depth.min() >= 1.0 and r.depth.max() <= 8.0
    # near (left) is a low index, far (right) a high one
    assert np.median(r.depth[:, :20]) < np.median(r.depth[:, -20:])


def test_folder_and_memory_paths_agree(plane_stack):
    folder, _ = plane_stack
    sf = scan_stack(folder)
    from focalcli.io.stack import read_stack

    a = depth_from_focus(sf, aif=True)
    b = depth_from_focus(read_stack(folder), aif=True)
    assert np.allclose(a.depth, b.depth) and np.allclose(a.aif, b.aif)


def test_confidence_is_low_where_there_is_no_texture():
    frames, depth, focus = synthetic.slanted_plane()
    frames[:, :, 60:] = 0.5  # right half: flat grey in every frame
    r = depth_from_focus(synthetic.as_focal_stack(frames, focus))
    assert r.confidence.min() >= 0 and r.confidence.max() <= 1
    assert r.confidence[10:-10, 10:50].mean() > 5 * r.confidence[10:-10, 75:-10].mean()


def test_all_in_focus_is_sharp_and_faithful():
    frames, depth, focus = synthetic.slanted_plane()
    sharp = synthetic.texture(*depth.shape)
    aif = all_in_focus(synthetic.as_focal_stack(frames, focus))
    inner = (slice(8, -8), slice(8, -8))
    err = np.abs(aif - sharp)[inner].mean()
    best_frame = min(np.abs(f - sharp)[inner].mean() for f in frames)
    assert err < 0.5 * best_frame, (err, best_frame)
    assert aif.min() >= 0 and aif.max() <= 1


def test_peak_tracker_matches_argmax():
    rng = np.random.default_rng(0)
    ms = rng.random((7, 5, 6)).astype(np.float32)
    t = PeakTracker()
    for m in ms:
        t.update(m)
    assert (t.index == ms.argmax(0)).all()
    assert np.allclose(t.best, ms.max(0))
    k = ms.argmax(0)
    rows, cols = np.indices(k.shape)
    assert np.allclose(t.prev, ms[np.maximum(k - 1, 0), rows, cols])
    assert np.allclose(t.next, ms[np.minimum(k + 1, 6), rows, cols])
    inner = (k >= 2) & (k <= 4)  # the second neighbours exist (the five-frame fit uses them only there)
    assert np.allclose(t.prev2[inner], ms[k - 2, rows, cols][inner])
    assert np.allclose(t.next2[inner], ms[np.minimum(k + 2, 6), rows, cols][inner])


@pytest.mark.parametrize("dense_optics", [False, True])
def test_streaming_memory_does_not_grow_with_stack_length(tmp_path, dense_optics, monkeypatch):
    import tracemalloc

    import focalcli.focus.classic as classic

    monkeypatch.setattr(classic, "_DECODERS", 2)  # frames measured ahead: two, as on a 2-core machine

    h, w = 120, 160
    frame_bytes = h * w * 3 * 4
    peaks = []
    for n in (12, 24):
        frames = np.random.default_rng(n).random((n, h, w, 3)).astype(np.float32)
        # a dense schedule with known optics (0.1 px blur step) smooths across frames: 2r + 1 = 9 maps held
        focus = 1 / np.linspace(1.0, 1.0 - 0.0004 * (n - 1), n) if dense_optics else None
        camera = {"focal_length_mm": 50, "f_number": 2, "pixel_pitch_um": 5} if dense_optics else None
        sf = scan_stack(write_frames(tmp_path / f"s{n}", frames, suffix=".jpg", focus=focus, camera=camera))
        del frames
        tracemalloc.start()
        result = depth_from_focus(sf, aif=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        if dense_optics:
            assert result.info["frame_smoothing_sigma"] == 2.0
    # twice the stack: the peak may differ by how the frames measured ahead overlap the main thread's temporaries
    # (up to about 2 frames' worth), not by 12 frames
    assert peaks[1] - peaks[0] < 2 * frame_bytes, [p / frame_bytes for p in peaks]
    # a fixed budget of full-size maps: the fusion pyramid, the peak trackers of both windows (and of the widest
    # small window without optics), the curve-shape measures, coverage and fill, and the frames' maps held for the
    # smoothing across frames: 2r + 1 = 9 with sigma 2, or the first 9 while it is estimated without optics (about
    # 6 frames' worth here), and the two frames measured ahead (RGB, gray and maps: about 3 frames' worth)
    assert peaks[1] < 30 * frame_bytes and peaks[0] < 30 * frame_bytes, [p / frame_bytes for p in peaks]  # 22-27


@pytest.mark.parametrize("measure", MEASURES)
def test_measures_are_non_negative_and_finite(measure):
    gray = np.zeros((64, 64), np.float32)
    gray[20:40, 20:40] = 1.0  # large jumps next to flat zero regions stress the running-sum box filter
    m = focus_measure(gray, measure, 9)
    assert np.isfinite(m).all() and m.min() >= 0


def test_textureless_pixels_take_their_depth_from_the_surroundings():
    frames, depth, focus = synthetic.slanted_plane()
    frames[:, :, 48:80] = 0.5  # a flat band across the plane: no focus evidence of its own
    band = (slice(8, -8), slice(56, 72))
    filled = depth_from_focus(synthetic.as_focal_stack(frames, focus)).depth
    # between its neighbours on the plane, not on the nearest or farthest focus plane
    assert abs_rel(filled[band], depth[band]) < 0.1
    assert filled[band].min() > focus[1] and filled[band].max() < focus[-2]
    raw = depth_from_focus(synthetic.as_focal_stack(frames, focus), smooth=0).depth  # the raw per-pixel estimate
    assert abs_rel(filled[band], depth[band]) < abs_rel(raw[band], depth[band])


def test_robust_to_sensor_noise():
    frames, depth, focus = synthetic.slanted_plane()
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 0.04, frames.shape), 0, 1).astype(np.float32)
    r = depth_from_focus(synthetic.as_focal_stack(noisy, focus))
    inner = (slice(8, -8), slice(8, -8))
    assert abs_rel(r.depth[inner], depth[inner]) < 0.04  # the unsmoothed 5 px measure of 0.1 scored 0.11


def test_smooth_is_validated_and_huge_values_stay_cheap():
    frames, depth, focus = synthetic.slanted_plane(h=48, w=64, n=4)
    stack = synthetic.as_focal_stack(frames, focus)
    for bad in (float("inf"), float("nan"), -1.0):
        with pytest.raises(ValueError, match="smooth"):
            depth_from_focus(stack, smooth=bad)
    d = depth_from_focus(stack, smooth=1e6, window=10**6).depth
    assert np.isfinite(d).all() and d.min() >= focus[0] - 1e-4 and d.max() <= focus[-1] + 1e-4


def test_scales_grow_with_the_image_and_the_noise():
    a = classic_scales(480, 640, noise=0.005, window=None, smooth=None)
    b = classic_scales(960, 1280, noise=0.005, window=None, smooth=None)
    assert b.large == pytest.approx(2 * a.large) and b.small == pytest.approx(2 * a.small)
    assert b.fill == pytest.approx(2 * a.fill) and b.levels == a.levels + 1
    assert presmooth_sigma(0.005) == 1.0 < presmooth_sigma(0.04) <= 3.0
    assert classic_scales(480, 640, noise=0.0, window=35, smooth=0).large == pytest.approx(35 / 12**0.5)
    assert classic_scales(480, 640, noise=0.0, window=None, smooth=0).fill == 0


def test_blur_step_is_the_thin_lens_blur_growth_between_frames():
    cam = Camera(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=56.25)
    # focused at 1.25 m: A f s / (s - f) = 0.025 * 0.05 * 1.25 / 1.2 m per diopter; 0.2 D from the 1 m plane
    expected = 0.025 * 0.05 * 1.25 / 1.2 * 0.2 / 56.25e-6
    assert blur_step_px([1.0, 1.25], cam) == pytest.approx(expected)  # 4.63 px
    assert blur_step_px([1.0, 1.25, 1.25 / 0.75], cam) == pytest.approx(float(np.median(
        [expected, 0.025 * 0.05 * (5 / 3) / (5 / 3 - 0.05) * 0.2 / 56.25e-6])))
    for missing in (Camera(focal_length_mm=50.0, f_number=2.0), Camera(f_number=2.0, pixel_pitch_um=5.0), Camera()):
        assert blur_step_px([1.0, 1.25], missing) is None
    assert blur_step_px(None, cam) is None and blur_step_px([1.0], cam) is None


def test_a_large_blur_step_widens_the_small_window_only():
    base = classic_scales(480, 640, noise=0.005, window=None, smooth=None)
    dense = classic_scales(480, 640, noise=0.005, window=None, smooth=None, blur_step=0.5)
    assert (dense.small, dense.large, dense.blur_step) == (base.small, base.large, 0.5)  # a dense stack: as before
    wide = classic_scales(480, 640, noise=0.005, window=None, smooth=None, blur_step=3.0)
    assert wide.small == pytest.approx(3.0) and wide.large == base.large and wide.fill == base.fill
    capped = classic_scales(480, 640, noise=0.005, window=None, smooth=None, blur_step=50.0)
    assert capped.small == pytest.approx(BLUR_STEP_CAP * base.large)
    given = classic_scales(480, 640, noise=0.005, window=35, smooth=None)  # the user's window is kept as given
    assert classic_scales(480, 640, noise=0.005, window=35, smooth=None, blur_step=50.0).small == given.small


def test_depth_records_the_widened_window(tmp_path):
    frames, _, focus = synthetic.slanted_plane(h=240, w=320, n=5)
    sf = scan_stack(write_frames(tmp_path / "s", frames, focus=focus))
    plain = depth_from_focus(sf).info["window_small_sigma_px"]
    from dataclasses import replace

    step = blur_step_px(list(focus), Camera(focal_length_mm=50.0, f_number=1.4, pixel_pitch_um=20.0))
    wide = depth_from_focus(replace(sf, camera=Camera(focal_length_mm=50.0, f_number=1.4, pixel_pitch_um=20.0)))
    assert step > plain and wide.info["window_small_sigma_px"] == pytest.approx(BLUR_STEP_CAP * 4.0, abs=1e-3)
    assert wide.info["blur_step_px"] == pytest.approx(step, abs=1e-3)
    assert depth_from_focus(sf).info["blur_step_px"] is None  # no camera in stack.json: unknown
    tiny = classic_scales(96, 128, noise=0.005, window=None, smooth=None)  # the cap never narrows the window
    assert classic_scales(96, 128, noise=0.005, window=None, smooth=None, blur_step=50.0).small == tiny.small


def test_noise_estimate_ignores_texture():
    rng = np.random.default_rng(0)
    clean = to_gray(synthetic.texture(240, 320))
    clean[:, 160:] = 0.5  # texture on one half only: the estimate must come from the flat half
    for sigma in (0.005, 0.02):
        noisy = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
        assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.15)


def test_gaussian_blur_matches_opencv_for_any_sigma():
    x = np.random.default_rng(0).random((200, 300)).astype(np.float32)
    x = cv2.GaussianBlur(x, (0, 0), 3)  # smooth input: the pyramid path is exact up to resampling
    for sigma in (2.0, 20.0):
        ref = cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        assert np.abs(gaussian_blur(x, sigma) - ref)[20:-20, 20:-20].max() < 0.02
    assert np.isfinite(gaussian_blur(x, 1e9)).all()


def test_guided_filter_smooths_but_keeps_the_guide_edges():
    guide = np.zeros((40, 60), np.float32)
    guide[:, 30:] = 1.0
    rng = np.random.default_rng(0)
    src = (guide * 2 + 1 + rng.normal(0, 0.1, guide.shape)).astype(np.float32)  # a noisy step on the same edge
    out = guided_filter(guide, src, np.ones_like(src), radius=5)
    assert np.abs(out[:, 28] - 1).max() < 0.1 and np.abs(out[:, 31] - 3).max() < 0.1  # edge kept
    assert out[:, 5:25].std() < 0.5 * src[:, 5:25].std()  # noise smoothed


def test_push_pull_and_fill_take_weak_values_from_the_strong_ones():
    values = np.tile(np.linspace(1.0, 2.0, 64, dtype=np.float32), (32, 1))
    weight = np.ones_like(values)
    weight[:, 20:44] = 0.0
    corrupted = values.copy()
    corrupted[:, 20:44] = 5.0  # garbage where there is no evidence
    filled = push_pull(corrupted, weight)
    assert np.abs(filled[:, 20:44] - values[:, 20:44]).max() < 0.4
    assert np.abs(filled[:, :18] - values[:, :18]).max() < 1e-5  # trusted values are kept
    out = fill_weak(corrupted, weight, np.full_like(values, 0.5), sigma=2.0)
    assert np.abs(out - values).max() < 0.4


@pytest.mark.parametrize("end", ["near", "far"])
def test_peak_in_an_end_interval_is_refined_not_snapped_to_the_end_plane(end):
    # a sparse 5-frame schedule; the plane lies a third of a step inside the end interval, nearer the end frame
    focus_d = np.linspace(2.0, 0.4, 5)  # diopters, near to far
    step = focus_d[0] - focus_d[1]
    plane_d = focus_d[0] - step / 3 if end == "near" else focus_d[-1] + step / 3
    h, w = 96, 128
    depth = np.full((h, w), 1 / plane_d, np.float32)
    frames = synthetic.render(synthetic.texture(h, w, seed=3), depth, 1 / focus_d, gain=2.0)
    got_d = 1 / np.median(depth_from_focus(synthetic.as_focal_stack(frames, 1 / focus_d), smooth=0).depth)
    end_d = focus_d[0] if end == "near" else focus_d[-1]
    assert abs(got_d - plane_d) < 0.6 * abs(plane_d - end_d), (got_d, plane_d, end_d)  # old code: exactly end_d


def test_peak_beyond_the_focus_range_stays_at_the_end_plane():
    focus_d = np.linspace(2.0, 0.4, 5)
    h, w = 96, 128
    depth = np.full((h, w), 1 / 0.15, np.float32)  # farther than the farthest focus plane
    frames = synthetic.render(synthetic.texture(h, w, seed=4), depth, 1 / focus_d, gain=2.0)
    got_d = 1 / np.median(depth_from_focus(synthetic.as_focal_stack(frames, 1 / focus_d), smooth=0).depth)
    assert abs(got_d - focus_d[-1]) < 0.1 * (focus_d[0] - focus_d[1]), got_d


def _tracked(width_frames: float, n: int = 9) -> PeakTracker:
    """A tracker fed Gaussian focus curves (peaks spread over the inner frames) of the given width in frames."""
    peaks = np.linspace(1.5, n - 2.5, 64, dtype=np.float32)[None].repeat(16, 0)  # (16, 64) inner peaks
    tracker = PeakTracker()
    for i in range(n):
        tracker.update((1e-3 + np.exp(-0.5 * ((i - peaks) / width_frames) ** 2)).astype(np.float32))
    return tracker


def test_peak_drop_tells_sparse_from_dense_schedules():
    sparse, dense = _tracked(0.6), _tracked(3.0)
    assert sparse.drop(1e-3) > 0.5 > 0.1 > dense.drop(1e-3) > 0.0
    assert _tracked(0.6, n=2).drop(1e-3) is None  # no inner frame: nothing to measure


def test_without_optics_a_sparse_stack_takes_the_wide_window(tmp_path, monkeypatch):
    import focalcli.focus.classic as classic

    frames, _, focus = synthetic.slanted_plane(h=240, w=320, n=5)
    sf = scan_stack(write_frames(tmp_path / "s", frames, focus=focus))  # no camera: the drop decides
    default = depth_from_focus(sf).info
    assert default["blur_step_px"] is None and default["peak_drop"] is not None
    monkeypatch.setattr(classic, "SPARSE_DROP", -1.0)  # every stack counts as sparse
    wide = depth_from_focus(sf).info
    assert wide["window_small_sigma_px"] == pytest.approx(BLUR_STEP_CAP * 4.0, abs=1e-3)
    monkeypatch.setattr(classic, "SPARSE_DROP", 1e9)  # none does
    assert depth_from_focus(sf).info["window_small_sigma_px"] == pytest.approx(1.0)
    monkeypatch.setattr(classic, "SPARSE_DROP", -1.0)
    given = depth_from_focus(sf, window=20).info  # a window the user set is kept as given
    assert given["window_small_sigma_px"] == pytest.approx(0.25 * 20 / 12**0.5, abs=1e-3)


def test_stretch_pushes_inner_peaks_toward_the_neighbours():
    from focalcli.focus.depth import PEAK_STRETCH, _stretch

    x0, x1, x2 = np.float32(3.0), np.float32(2.0), np.float32(1.5)  # diopters: spacing 1 before, 0.5 after
    out = _stretch(np.array([2.0, 1.9375, 2.25, 1.75, 2.5]), x0, x1, x2)
    expected = [2.0, 2.0 - 0.25 * 0.25**PEAK_STRETCH, 2.0 + 0.5 * 0.5**PEAK_STRETCH, 1.75, 2.5]
    assert np.allclose(out, expected)  # each side's own half spacing; the ends of the half intervals stay put


def test_tail_tells_gaussian_from_peaky_focus_curves():
    n, offsets = 11, np.linspace(-0.5, 0.5, 64, dtype=np.float32)[None].repeat(16, 0)

    def tracked(curve) -> PeakTracker:
        t = PeakTracker()
        for i in range(n):
            t.update((1e-3 + curve(i - 5 - offsets)).astype(np.float32))
        return t

    gaussian = tracked(lambda u: np.exp(-0.5 * (u / 0.8) ** 2))
    disk_like = tracked(lambda u: (1 + (u / 0.3) ** 2) ** -1.5)  # steep, then level: blur by a disk
    assert gaussian.tail(1e-3) > 2.5 > 1.7 > disk_like.tail(1e-3) > 0
    short = PeakTracker()
    for i in range(4):
        short.update(np.full((16, 64), 1.0 + i % 2, np.float32))
    assert short.tail(1e-3) is None  # no peak two frames from both ends


def test_sub_frame_peaks_are_stretched_only_for_sparse_peaky_stacks(tmp_path, monkeypatch):
    import focalcli.focus.classic as classic

    frames, _, focus = synthetic.slanted_plane(h=120, w=160, n=8)  # Gaussian blur: tail about 2
    stack = synthetic.as_focal_stack(frames, focus)
    plain = depth_from_focus(stack)
    assert plain.info["peak_tail"] > classic.PEAKY_TAIL
    monkeypatch.setattr(classic, "PEAKY_TAIL", 10.0)
    monkeypatch.setattr(classic, "SPARSE_DROP", -1.0)
    assert not np.allclose(depth_from_focus(stack).depth, plain.depth)
    monkeypatch.setattr(classic, "SPARSE_DROP", 1e9)  # a dense stack is never stretched, however peaky
    dense = depth_from_focus(stack).depth
    assert not np.allclose(dense, plain.depth)  # a dense stack's peaks come from five frames, not three
    monkeypatch.setattr(classic, "PEAKY_TAIL", 0.0)
    assert np.array_equal(depth_from_focus(stack).depth, dense)


def test_five_point_parabola_finds_the_vertex():
    from focalcli.focus.depth import _vertex5, _vertex5_weights

    positions = np.array([3.4, 3.0, 2.5, 2.0, 1.6, 1.2, 1.0], np.float32)  # diopters, uneven spacing
    weights = _vertex5_weights(positions)
    k = np.array([[3]])  # the best frame: 2.0 D; its fit uses frames 1..5

    def fit(top: float, sign: float = 1.0) -> float:
        ys = [np.array([[sign * (-4.0 * (x - top) ** 2 + 1.0)]], np.float32) for x in positions[1:6]]
        return float(_vertex5(positions, k, ys, weights)[0, 0])

    for top in (2.0, 2.1, 1.85):
        assert fit(top) == pytest.approx(top, abs=1e-4)
    assert fit(2.6) == pytest.approx(2.25)  # at most half a spacing from the best frame
    assert np.isnan(fit(2.0, sign=-1.0))  # no maximum: the 3-point fit stays
    assert np.isnan(_vertex5(positions, np.array([[1]]), [np.zeros((1, 1), np.float32)] * 5, weights)[0, 0])
    even = np.linspace(3.0, 1.0, 9, dtype=np.float32)  # evenly spaced: one set of weights for every pixel
    ys = [np.array([[-((x - 1.8) ** 2)]], np.float32) for x in even[3:8]]
    assert _vertex5(even, np.array([[5]]), ys, _vertex5_weights(even))[0, 0] == pytest.approx(1.8, abs=1e-4)


@pytest.mark.parametrize("n", [5, 3])
def test_end_intervals_of_a_sparse_disk_blur_stack_are_not_pulled_onto_the_end_planes(n):
    from focalcli.bench.reference_render import Optics, render_stack

    diopters = np.linspace(2.0, 0.4, n)  # near to far, 0.4 or 0.8 D apart (a sparse schedule at F/2.8)
    spacing = diopters[0] - diopters[1]
    h, w = 96, 256
    truth = np.linspace(diopters[0], diopters[-1], w, dtype=np.float32)  # a plane across the range, left to right
    optics = Optics(focal_length_mm=50.0, f_number=2.8, pixel_pitch_um=36000 / 640)
    frames = render_stack(synthetic.texture(h, w, seed=4), np.repeat(1 / truth[None], h, axis=0), list(1 / diopters),
                          optics, shot=0.0, read=0.0, rng=np.random.default_rng(0))  # a lens's disk-shaped blur
    result = depth_from_focus(synthetic.as_focal_stack(frames / np.float32(255), 1 / diopters), smooth=0)
    if n >= 5:
        assert result.info["peak_tail"] < 1.7  # peaky focus curves
    else:  # too few frames to measure the curves' shape: a sparse stack is taken as peaky
        assert result.info["peak_tail"] is None and result.info["peak_drop"] > 0.25
    error = np.abs(np.median(1 / result.depth, axis=0) - truth) / spacing  # frame spacings, per column
    at_end = (np.abs(truth - diopters[0]) < spacing / 2) | (np.abs(truth - diopters[-1]) < spacing / 2)
    # the log-parabola through an end frame and its two neighbours has no maximum for most of these pixels, which
    # then stayed on the end plane (0.23 spacings off on average with 5 frames, 0.24 with 3); the Cauchy fit finds
    # them (0.14, 0.17)
    assert error[at_end][8:-8].mean() < (0.17 if n >= 5 else 0.2)
    assert error[~at_end].mean() < (0.08 if n >= 5 else 0.09)  # 0.05, 0.08 (0.10 with the log-parabola at 3)


def test_frame_smoother_matches_a_gaussian_across_the_whole_stack():
    from focalcli.focus.depth import FrameSmoother

    n, rng = 9, np.random.default_rng(0)
    maps = rng.random((n, 4, 5)).astype(np.float32)
    for sigma in (0.0, 0.7, 2.0):
        smoother, out = FrameSmoother(n, sigma), []
        for m in maps:
            out += [a for a, _ in smoother.push((m, None))]
        out += [a for a, _ in smoother.flush()]
        r = smoother.radius
        assert r == {0.0: 0, 0.7: 2, 2.0: 4}[sigma] and len(out) == n
        for j in range(n):  # the kernel truncated at 2 sigma and renormalised at the ends of the stack
            lo, hi = max(0, j - r), min(n - 1, j + r)
            k = np.exp(-0.5 * ((np.arange(lo, hi + 1) - j) / max(sigma, 1e-9)) ** 2)
            assert np.allclose(out[j], np.tensordot(k / k.sum(), maps[lo:hi + 1], axes=1), atol=1e-6)
        assert len(smoother._buffer) <= 2 * r + 1
    # one sigma per frame: a schedule dense at one end and sparse at the other
    sigmas = np.array([0.0, 0.0, 0.1, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0])
    smoother, out = FrameSmoother(n, sigmas), []
    for m in maps:
        out += [a for a, _ in smoother.push((m, None))]
    out += [a for a, _ in smoother.flush()]
    assert len(out) == n and smoother.radius == 4 and smoother.sigma == 1.0
    for j, sigma in enumerate(sigmas):
        r = min(int(np.ceil(2 * sigma)), 4)
        lo, hi = max(0, j - r), min(n - 1, j + r)
        k = np.exp(-0.5 * ((np.arange(lo, hi + 1) - j) / max(sigma, 1e-9)) ** 2)
        assert np.allclose(out[j], np.tensordot(k / k.sum(), maps[lo:hi + 1], axes=1), atol=1e-6)


def test_frame_sigmas_follow_the_local_spacing_of_the_schedule():
    from focalcli.focus.classic import blur_steps_px, frame_sigmas

    camera = Camera(focal_length_mm=50, f_number=2, pixel_pitch_um=36000 / 640)
    metres = list(np.linspace(0.6, 10.0, 10))  # uniform in metres: far apart in diopters near, close far away
    steps = blur_steps_px(metres, camera)
    assert steps[0] > 10 * steps[-1]
    sigmas = frame_sigmas(steps, 10)
    assert sigmas[0] == 0.0 and sigmas[-1] > 1.0  # the sparse near end is left alone, the dense far end smoothed
    diopters = list(1 / np.linspace(1 / 0.6, 1 / 10.0, 10))  # uniform in diopters: about one sigma for all
    f8 = Camera(focal_length_mm=50, f_number=8, pixel_pitch_um=36000 / 640)  # 0.7 px steps: dense
    sigmas = frame_sigmas(blur_steps_px(diopters, f8), 10)
    assert sigmas.min() > 0.5 and np.ptp(sigmas) < 0.1


def test_curve_width_grows_with_the_spacing_of_the_frames():
    from focalcli.focus.depth import curve_width

    def maps(spacing: float) -> list[np.ndarray]:  # disk-like focus curves, peaks spread over the first 9 frames
        peaks = np.linspace(1.5, 6.5, 400, dtype=np.float32)[None].repeat(8, 0)
        far = np.full((8, 400), 1e-3, np.float32)  # the rest of the scene, in focus in later frames: the noise floor
        return [np.hstack([1e-3 + (1 + ((i - peaks) * spacing / 0.5) ** 2) ** -1.5, far]) for i in range(9)]

    dense, sparse = curve_width(maps(0.1)), curve_width(maps(2.0))
    assert 0 < dense < 0.5 < 1.5 < sparse
    assert curve_width(maps(0.1)[:4]) is None  # too few frames to bend
    assert curve_width([np.ones((8, 8), np.float32)] * 9) is None  # no peaks


def test_dense_stacks_are_smoothed_across_frames():
    from focalcli.bench.reference_render import Optics, render_stack
    from focalcli.focus.classic import frame_smoothing

    assert frame_smoothing(None) == 0.0 and frame_smoothing(4.0) == 0.0  # unknown optics; frames far apart
    assert frame_smoothing(0.6) == pytest.approx(1.0) and frame_smoothing(0.01) == 2.0
    n, h, w = 24, 96, 192
    diopters = np.linspace(1.6, 0.8, n)  # near to far, 0.4 px blur step at 640 px wide: dense
    truth = np.linspace(diopters[2], diopters[-3], w, dtype=np.float32)
    frames = render_stack(synthetic.texture(h, w, seed=5), np.repeat(1 / truth[None], h, axis=0), list(1 / diopters),
                          Optics(50.0, 4.0, 36000 / 640), shot=0.002, read=0.004, rng=np.random.default_rng(0))
    camera = Camera(focal_length_mm=50, f_number=4, pixel_pitch_um=36000 / 640)
    result = depth_from_focus(synthetic.as_focal_stack(frames / np.float32(255), 1 / diopters, camera), smooth=0)
    assert result.info["frame_smoothing_sigma"] == pytest.approx(1.46, abs=0.01)
    error = np.abs(1 / result.depth - truth) / (diopters[0] - diopters[1])  # frame spacings
    assert error.mean() < 1.0  # 1.29 when each frame's measure is taken as it is (0.77 smoothed)
    # without the pixel pitch (so without the blur step) the smoothing comes from the curves of the first 9 frames
    result = depth_from_focus(synthetic.as_focal_stack(frames / np.float32(255), 1 / diopters), smooth=0)
    assert result.info["blur_step_px"] is None and result.info["frame_smoothing_sigma"] > 0.7
    error = np.abs(1 / result.depth - truth) / (diopters[0] - diopters[1])
    assert error.mean() < 1.0


@pytest.mark.parametrize("n", [4, 10, 24])
def test_the_all_in_focus_fusion_does_not_change_the_depth(n):
    # the fusion keeps the first frame's focus measure as its salience; it used to change it in place while the peak
    # tracker (and the smoothing across frames) still held it
    focus = 1.0 / np.linspace(1 / 0.5 + 0.1, 1 / 1.0 - 0.1, n)
    depth = np.repeat(np.linspace(0.5, 1.0, 128, dtype=np.float32)[None], 96, axis=0)
    stack = synthetic.as_focal_stack(synthetic.render(synthetic.texture(96, 128, seed=3), depth, focus), focus)
    with_aif = depth_from_focus(stack, aif=True)
    assert with_aif.aif is not None
    assert np.array_equal(with_aif.depth, depth_from_focus(stack).depth)


def _half_beyond_far_plane(n: int = 8):
    """Left half inside the focus range, right half beyond its far plane (1 / 0.3 m against 1 / 0.4 m)."""
    focus_d = np.linspace(2.0, 0.4, n)  # diopters, near to far
    h, w = 96, 128
    depth = np.full((h, w), 1 / 1.2, np.float32)
    depth[:, w // 2 :] = 1 / 0.3
    frames = synthetic.render(synthetic.texture(h, w, seed=5), depth, 1 / focus_d, gain=2.0)
    return frames, focus_d


def test_end_plane_shares_tell_a_scene_beyond_the_focus_range():
    frames, focus_d = _half_beyond_far_plane()
    beyond = depth_from_focus(synthetic.as_focal_stack(frames, 1 / focus_d)).info["at_end_planes"]
    assert beyond["far"] > 0.3 and beyond["near"] < 0.05, beyond
    plane, _, focus = synthetic.slanted_plane()  # inside the focus range
    inside = depth_from_focus(synthetic.as_focal_stack(plane, focus)).info["at_end_planes"]
    assert inside["far"] < 0.1 and inside["near"] < 0.1, inside
    no_distances = depth_from_focus(synthetic.as_focal_stack(frames, None)).info["at_end_planes"]
    assert no_distances["far"] > 0.3  # frame-index units: the last frame
    two = depth_from_focus(synthetic.as_focal_stack(frames[[0, -1]], 1 / focus_d[[0, -1]])).info
    assert two["at_end_planes"] is None  # two frames: every peak is on a plane


def test_end_plane_shares_count_confident_pixels_only():
    peak = np.zeros((64, 64), np.float32)
    peak[:, 32:] = 3.0  # on the last plane of positions 0..3
    confidence = np.ones_like(peak)
    assert end_plane_shares(peak, np.arange(4.0), confidence) == (0.5, 0.5)
    confidence[:, 32:] = 0.1  # the far half is filled, not measured
    assert end_plane_shares(peak, np.arange(4.0), confidence) == (1.0, 0.0)
    assert end_plane_shares(peak, np.arange(4.0), np.zeros_like(peak)) is None


@pytest.mark.parametrize("aif", [False, True])
def test_an_aligned_stack_is_measured_on_its_frames_as_recorded(monkeypatch, aif):
    from focalcli.align.stack import WarpedStack, register_lazily
    from tests.synthetic_align import breathing_stack

    frames, depth, focus = breathing_stack(step=0.006)
    warped = register_lazily(synthetic.as_focal_stack(frames, focus))
    read = []
    monkeypatch.setattr(WarpedStack, "frame", lambda self, j, native=False: read.append(j))  # warped frames
    result = depth_from_focus(warped, aif=aif)
    # the focus measure of each frame as the camera recorded it, warped afterwards: resampling a frame would
    # smooth its finest detail in every frame but the reference
    assert read == []
    inner = (slice(24, -24), slice(24, -24))
    assert np.mean(np.abs(result.depth[inner] - depth[inner]) / depth[inner]) < 0.01
    assert (result.aif is not None) == aif


@pytest.mark.parametrize("aif", [False, True])
def test_frames_measured_ahead_in_threads_give_the_serial_result(plane_stack, monkeypatch, aif):
    import focalcli.focus.classic as classic

    sf = scan_stack(plane_stack[0])
    parallel = depth_from_focus(sf, aif=aif)
    monkeypatch.setattr(classic, "_DECODERS", 1)
    monkeypatch.setattr(classic.os, "cpu_count", lambda: 1)
    serial = depth_from_focus(sf, aif=aif)
    assert np.array_equal(parallel.depth, serial.depth) and np.array_equal(parallel.confidence, serial.confidence)
    assert not aif or np.array_equal(parallel.aif, serial.aif)
