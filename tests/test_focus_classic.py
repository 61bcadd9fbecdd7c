import numpy as np
import pytest

from focalcli.focus.classic import all_in_focus, depth_from_focus
from focalcli.focus.depth import PeakTracker
from focalcli.focus.measures import MEASURES, focus_measure, to_gray
from focalcli.io.stack import scan_stack
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


def test_streaming_memory_does_not_grow_with_stack_length(tmp_path):
    import tracemalloc

    h, w = 120, 160
    frame_bytes = h * w * 3 * 4
    peaks = []
    for n in (4, 16):
        frames = np.random.default_rng(n).random((n, h, w, 3)).astype(np.float32)
        sf = scan_stack(write_frames(tmp_path / f"s{n}", frames, suffix=".jpg"))
        del frames
        tracemalloc.start()
        depth_from_focus(sf, aif=True)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < frame_bytes, [p / frame_bytes for p in peaks]
    assert peaks[1] < 14 * frame_bytes, [p / frame_bytes for p in peaks]


@pytest.mark.parametrize("measure", MEASURES)
def test_measures_are_non_negative_and_finite(measure):
    gray = np.zeros((64, 64), np.float32)
    gray[20:40, 20:40] = 1.0  # large jumps next to flat zero regions stress the running-sum box filter
    m = focus_measure(gray, measure, 9)
    assert np.isfinite(m).all() and m.min() >= 0
