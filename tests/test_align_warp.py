"""Warping: the common valid box, exact resampling for pure shifts, photometric correction."""

from __future__ import annotations

import numpy as np

from focalcli.align.register import FrameTransform
from focalcli.align.warp import valid_box, warp_frame, warp_map


def _shift(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def test_valid_box_of_shifted_frames():
    ts = [FrameTransform("a", np.eye(3)), FrameTransform("b", _shift(3.0, -2.0)), FrameTransform("c", _shift(-1.5, 4))]
    # x: frames cover [0, 99], [3, 102], [-1.5, 97.5] -> [3, 97]; y: [0, 79], [-2, 77], [4, 83] -> [4, 77]
    assert valid_box(ts, (80, 100)) == (3, 4, 95, 74)
    assert valid_box([FrameTransform("a", np.eye(3))], (80, 100)) == (0, 0, 100, 80)


def test_valid_box_is_inside_every_rotated_frame():
    theta = np.radians(1.0)
    rot = np.array([[np.cos(theta) * 1.02, -np.sin(theta) * 1.02, -3], [np.sin(theta) * 1.02, np.cos(theta) * 1.02, 2],
                    [0, 0, 1]])
    x, y, w, h = valid_box([FrameTransform("a", np.eye(3)), FrameTransform("b", rot)], (120, 160))
    inv = np.linalg.inv(rot)
    for px, py in ((x, y), (x + w - 1, y), (x, y + h - 1), (x + w - 1, y + h - 1)):
        sx, sy, sw = inv @ [px, py, 1.0]
        assert -1e-6 <= sx / sw <= 159 + 1e-6 and -1e-6 <= sy / sw <= 119 + 1e-6


def test_integer_shift_is_an_exact_copy_and_colours_are_corrected():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, (40, 50, 3)).astype(np.float32)
    t = FrameTransform("b", _shift(-2, -3), gain=np.array([1.1, 1.0, 0.9], np.float32),
                       offset=np.array([0.0, 0.05, 0.0], np.float32))
    out = warp_frame(image, t, (0, 0, 40, 30), photometric=False)  # output pixel (x, y) = input (x + 2, y + 3)
    np.testing.assert_allclose(out, image[3:33, 2:42], atol=1e-5)
    corrected = warp_frame(image, t, (0, 0, 40, 30))
    np.testing.assert_allclose(corrected, np.clip(image[3:33, 2:42] * t.gain + t.offset, 0, 1), atol=1e-5)


def test_identity_keeps_the_frame():
    image = np.random.default_rng(1).uniform(0, 1, (20, 30, 3)).astype(np.float32)
    np.testing.assert_array_equal(warp_frame(image, FrameTransform("a", np.eye(3)), (0, 0, 30, 20)), image)
    np.testing.assert_allclose(warp_frame(image, FrameTransform("a", np.eye(3)), (5, 4, 10, 8)), image[4:12, 5:15],
                               atol=1e-6)


def test_warp_map_moves_a_map_like_the_frame_and_leaves_zeros_outside():
    rng = np.random.default_rng(0)
    values = rng.random((40, 50)).astype(np.float32)
    t = FrameTransform("b", _shift(-2, -3), gain=np.array([1.2, 1.2, 1.2], np.float32))  # no colour correction
    out = warp_map(values, t, (0, 0, 50, 40))
    assert np.array_equal(out[:37, :48], values[3:, 2:])  # an integer shift: a copy
    assert (out[37:] == 0).all() and (out[:, 48:] == 0).all()  # beyond the frame: no measure, not its border
    assert np.array_equal(warp_map(values, FrameTransform("a", np.eye(3)), (0, 0, 50, 40)), values)
