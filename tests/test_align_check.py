"""The quick alignment check (``focal predict/fuse --align auto``) and the coverage of warped frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from focalcli.align import check as check_mod
from focalcli.align.check import check_alignment, corner_displacement, gray_thumbnail
from focalcli.align.register import FrameTransform
from focalcli.align.warp import coverage_mask, warp_frame
from focalcli.errors import InputError
from focalcli.io.stack import scan_stack
from tests import synthetic
from tests.conftest import write_frames
from tests.synthetic_align import breathing_stack, misaligned_stack


@pytest.mark.parametrize("shape", [(32, 40), (96, 128), (240, 320)])
@pytest.mark.parametrize("scene", [synthetic.slanted_plane, synthetic.step_planes])
def test_aligned_synthetic_stacks_need_no_alignment(shape, scene):
    frames, _, focus = scene(*shape)
    c = check_alignment(synthetic.as_focal_stack(frames, focus))
    assert not c.needed, c.reason
    assert c.misalignment_px is None or c.misalignment_px < 0.5


def test_focus_breathing_is_found_and_extrapolated():
    frames, _, focus = breathing_stack(step=0.004)
    c = check_alignment(synthetic.as_focal_stack(frames, focus))
    assert c.needed and "breathing" in c.reason
    # 1.004 per step, 3.5 steps from the middle to an end: the corners (99.4 px from the centre) move ~1.4 px
    expected = ((1.004 ** 3.5) - 1) * np.hypot(79.5, 59.5)
    assert c.breathing_px == pytest.approx(expected, rel=0.2)
    for pair in c.pairs:
        assert pair["scale"] == pytest.approx(1.004, abs=1.2e-3)  # the second frame shows the scene 0.4 % larger


def test_breathing_below_the_threshold_is_left_alone():
    frames, _, focus = breathing_stack(step=0.0005)  # ~0.17 px at the corners of the end frames
    c = check_alignment(synthetic.as_focal_stack(frames, focus))
    assert not c.needed


def test_shake_is_found():
    frames, _, _ = misaligned_stack(n=5, h=120, w=160, model="translation", seed=2)  # shifts of up to 4 px
    c = check_alignment(synthetic.as_focal_stack(frames, None))
    assert c.needed and "shifted" in c.reason


def test_disagreeing_scale_changes_are_not_breathing(monkeypatch):
    """Defocus fakes small scale changes of either sign between neighbours; only a steady trend is breathing."""
    rows = [{"frames": [0, 1], "matrix": np.eye(3), "score": 0.9, "scale": 1.004, "shift_px": [0.1, 0.0],
             "displacement_px": 0.5},
            {"frames": [3, 4], "matrix": np.eye(3), "score": 0.9, "scale": 0.997, "shift_px": [0.0, 0.1],
             "displacement_px": 0.4},
            {"frames": [6, 7], "matrix": np.eye(3), "score": 0.9, "scale": 1.003, "shift_px": [0.0, 0.0],
             "displacement_px": 0.3}]
    monkeypatch.setattr(check_mod, "check_pairs", lambda *a, **k: [dict(r) for r in rows])
    frames, _, focus = synthetic.slanted_plane(n=8)
    c = check_alignment(synthetic.as_focal_stack(frames, focus))
    assert not c.needed and c.breathing_px is None and "disagree" in c.reason
    rows[1]["scale"] = 1.002  # now all three agree
    c = check_alignment(synthetic.as_focal_stack(frames, focus))
    assert c.needed and c.breathing_px > 0.5


def test_check_reads_few_frames(tmp_path, monkeypatch):
    """It runs on every prediction: only the frames of the three neighbouring pairs are decoded, once each."""
    frames, _, focus = synthetic.slanted_plane(h=64, w=80, n=12)
    sf = scan_stack(write_frames(tmp_path / "s", frames, focus=focus))
    seen = []
    real = check_mod.gray_thumbnail
    monkeypatch.setattr(check_mod, "gray_thumbnail", lambda stack, i, side: seen.append(i) or real(stack, i, side))
    check_alignment(sf)
    assert sorted(seen) == [0, 1, 5, 6, 10, 11]


def test_jpeg_thumbnails_use_reduced_decoding(tmp_path):
    frames, _, focus = synthetic.slanted_plane(h=600, w=800, n=3)
    sf = scan_stack(write_frames(tmp_path / "s", frames, focus=focus, suffix=".jpg"))
    small = gray_thumbnail(sf, 1, 256)
    assert small.shape == (192, 256) and small.dtype == np.float32
    full = cv2.resize(cv2.cvtColor(frames[1], cv2.COLOR_RGB2GRAY), (256, 192), interpolation=cv2.INTER_AREA)
    assert np.abs(small - full).mean() < 0.02


def test_corner_displacement():
    m = np.array([[1.01, 0, 0], [0, 1.01, 0], [0, 0, 1.0]])  # scale about the origin: the far corner moves most
    assert corner_displacement(m, (101, 201)) == pytest.approx(0.01 * np.hypot(200, 100))


def test_coverage_mask_marks_the_uncovered_border():
    t = FrameTransform(name="f", matrix=np.array([[1.0, 0, 3.0], [0, 1.0, -2.0], [0, 0, 1.0]]))  # 3 px right, 2 up
    cover = coverage_mask(t, (20, 30), (0, 0, 30, 20))
    assert cover.shape == (20, 30)
    assert not cover[:, :3].any()
    assert not cover[-2:, :].any() and cover[:-2, 3:].all()
    same = FrameTransform(name="g", matrix=np.eye(3))
    assert coverage_mask(same, (20, 30), (0, 0, 30, 20)).all()
    # the warped frame repeats the border where it is not covered (so filters see no edge), and is real elsewhere
    img = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    warped = warp_frame(img, t, (0, 0, 30, 20), photometric=False)
    assert np.allclose(warped[:-2, 3:], img[2:, :-3], atol=1e-5)


def test_unreadable_checked_frame_raises_input_error(tmp_path):
    """The frames are decoded in threads: a frame that cannot be read still ends in the one InputError, naming it."""
    frames, _, focus = synthetic.slanted_plane(h=64, w=80, n=12)
    folder = write_frames(tmp_path / "s", frames, focus=focus)
    sf = scan_stack(folder)
    sf.frame_paths[6].write_bytes(b"not an image")
    with pytest.raises(InputError, match=sf.frame_paths[6].name):
        check_alignment(sf)


def test_the_default_thresholds_grow_with_the_frame(monkeypatch):
    """Defocus moves blurred structures by a share of the frame: at 6000 px, 1.1-1.5 px between aligned neighbours
    (``size_factor``), so the default thresholds grow with the frame; a threshold that is given is kept."""
    assert check_mod.size_factor((480, 640)) == 1.0 and check_mod.size_factor((32, 40)) == 1.0
    assert check_mod.size_factor((4000, 6000)) == pytest.approx(9.375)
    rows = [{"frames": [a, a + 1], "matrix": np.eye(3), "score": 0.9, "scale": s, "shift_px": [1.5, 0.0],
             "displacement_px": 1.5} for a, s in ((0, 1.001), (4, 0.999), (8, 1.0005))]
    monkeypatch.setattr(check_mod, "check_pairs", lambda *a, **k: [dict(r) for r in rows])

    class Frames:  # the check reads names and size only (its pairs are faked)
        def __init__(self, size):
            self.size, self.names = size, [f"f{i}.png" for i in range(10)]

        def __len__(self):
            return 10

    small, large = check_alignment(Frames((480, 640))), check_alignment(Frames((4000, 6000)))
    assert small.needed and "shifted" in small.reason and small.to_json()["shift_threshold_px"] == 1.0
    assert not large.needed and large.threshold_px == pytest.approx(4.6875)
    assert large.to_json()["shift_threshold_px"] == pytest.approx(9.375)
    given = check_alignment(Frames((4000, 6000)), threshold_px=0.2)
    assert given.threshold_px == 0.2 and given.shift_threshold_px == pytest.approx(9.375)


def test_pairs_that_cannot_be_registered_are_left_out(monkeypatch):
    """Frames focused far from everything may hold too little texture to register: the other pairs decide."""
    good = {"matrix": np.eye(3), "score": 0.9, "displacement_px": 1.0}
    rows = [{"frames": [0, 1], "failure": "ECC did not converge"},
            {"frames": [4, 5], "scale": 1.004, "shift_px": [0.1, 0.0], **good},
            {"frames": [8, 9], "scale": 1.0045, "shift_px": [0.0, 0.1], **good}]
    monkeypatch.setattr(check_mod, "check_pairs", lambda *a, **k: [dict(r) for r in rows])
    frames, _, focus = synthetic.slanted_plane(n=10)
    stack = synthetic.as_focal_stack(frames, focus)
    c = check_alignment(stack)  # two pairs agree on a steady breathing
    assert c.needed and "breathing" in c.reason and "could not be registered" in c.reason
    assert c.misalignment_px == c.breathing_px > 0.5 and c.to_json()["pairs"][0]["failure"]
    rows[2]["scale"] = 0.998  # now they disagree
    c = check_alignment(stack)
    assert not c.needed and c.breathing_px is None and c.misalignment_px == pytest.approx(0.1)
    rows[2] = {"frames": [8, 9], "failure": "score 0.10 < 0.3"}  # one pair left: a shift still counts
    rows[1]["shift_px"] = [3.0, 0.0]
    c = check_alignment(stack)
    assert c.needed and "shifted" in c.reason and c.breathing_px is None
    rows[1] = {"frames": [4, 5], "failure": "ECC did not converge"}  # none left
    c = check_alignment(stack)
    assert not c.needed and c.misalignment_px is None and "--align on" in c.reason
