"""The 3x3 geometry of registration: resize maps, the closest similarity, magnification."""

import math

import cv2
import numpy as np
import pytest

from focalcli.align.geometry import magnification, resize_map, to_similarity

SIZE = (60, 80)  # (H, W)
CENTRE = np.array([(SIZE[1] - 1) / 2, (SIZE[0] - 1) / 2, 1.0])


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]])


def test_a_similarity_is_its_own_closest_similarity():
    m = _similarity(1.03, 0.02, 4.0, -2.5)
    np.testing.assert_allclose(to_similarity(m, SIZE), m, atol=1e-12)


def test_closest_similarity_of_a_sheared_warp():
    w = np.array([[1.1, 0.1, 5.0], [0.05, 0.9, -3.0], [0.0, 0.0, 1.0]])
    s = to_similarity(w, SIZE)
    # the least-squares projection of the linear part onto [[p, -q], [q, p]]
    np.testing.assert_allclose(s[:2, :2], [[1.0, 0.025], [-0.025, 1.0]], atol=1e-12)
    np.testing.assert_allclose(s @ CENTRE, w @ CENTRE, atol=1e-12)  # the centre maps where w maps it
    assert s[2].tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("breathing", [1.0, 1.02, 0.97])
def test_magnification_of_a_similarity(breathing):
    """A frame that shows the scene 2 % larger maps onto the reference shrunk by 1 / 1.02."""
    m = _similarity(1.0 / breathing, 0.3, 7.0, -1.0)
    assert magnification(m, SIZE) == pytest.approx(breathing, rel=1e-12)


def test_magnification_of_a_homography_is_the_local_scale_at_the_centre():
    m = np.array([[1.01, 0.02, 3.0], [-0.01, 0.99, 2.0], [2e-4, -1e-4, 1.0]])

    def apply(x, y):
        p = m @ [x, y, 1.0]
        return p[:2] / p[2]

    eps = 1e-4
    cx, cy = CENTRE[:2]
    jac = np.stack([(apply(cx + eps, cy) - apply(cx - eps, cy)) / (2 * eps),
                    (apply(cx, cy + eps) - apply(cx, cy - eps)) / (2 * eps)], axis=1)
    assert magnification(m, SIZE) == pytest.approx(1.0 / math.sqrt(abs(np.linalg.det(jac))), rel=1e-6)


def test_resize_map_matches_cv2_resize():
    """A bright pixel lands where the map says after cv2.resize (pixel centres at integers)."""
    img = np.zeros((40, 64), np.float32)
    img[20:22, 32:34] = 1.0  # a 2x2 block centred at (32.5, 20.5)
    small = cv2.resize(img, (32, 20), interpolation=cv2.INTER_AREA)
    x, y, _ = resize_map(img.shape, small.shape) @ [32.5, 20.5, 1.0]
    ys, xs = np.nonzero(small == small.max())
    assert (x, y) == (pytest.approx(xs.mean()), pytest.approx(ys.mean()))
