import numpy as np
import pytest

from focalcli.errors import InputError
from focalcli.io.depth import colorize_depth, read_depth, write_depth, write_preview


@pytest.mark.parametrize("suffix", [".npy", ".png", ".tiff"])
def test_depth_roundtrip(tmp_path, suffix):
    d = np.random.default_rng(0).uniform(0.3, 5.0, (9, 11)).astype(np.float32)
    d[0, 0] = 0.0
    d[1, 1] = np.nan
    write_depth(tmp_path / f"d{suffix}", d)
    back = read_depth(tmp_path / f"d{suffix}")
    assert back.shape == d.shape and back.dtype == np.float32
    assert back[0, 0] == 0 and back[1, 1] == 0  # invalid stays invalid
    tol = 0.0006 if suffix == ".png" else 1e-7  # png holds millimetres
    valid = np.isfinite(d) & (d > 0)
    assert np.abs(back[valid] - d[valid]).max() <= tol


def test_png_is_16_bit_millimetres(tmp_path):
    import cv2

    write_depth(tmp_path / "d.png", np.full((2, 3), 1.234, np.float32))
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and (raw == 1234).all()


def test_preview_is_colour_with_black_invalid(tmp_path):
    d = np.linspace(1, 2, 20, dtype=np.float32).reshape(4, 5)
    d[0, 0] = 0
    rgb = colorize_depth(d)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert (rgb[0, 0] == 0).all() and rgb[3, 4].any()
    write_preview(tmp_path / "p.png", d)
    assert (tmp_path / "p.png").stat().st_size > 0


def test_read_depth_rejects_unknown(tmp_path):
    (tmp_path / "d.xyz").write_text("1")
    with pytest.raises(InputError, match="unknown depth format"):
        read_depth(tmp_path / "d.xyz")


def test_preview_fades_low_confidence_to_dark_grey():
    depth = np.tile(np.linspace(1.0, 3.0, 40, dtype=np.float32), (20, 1))
    confidence = np.ones_like(depth)
    confidence[:10] = 0.0  # top half: no focus evidence
    rgb = colorize_depth(depth, confidence, depth_range=(1.0, 3.0)).astype(int)
    sure = colorize_depth(depth, None, depth_range=(1.0, 3.0)).astype(int)
    assert (rgb[10:] == sure[10:]).all()  # confident pixels keep their colour
    assert (rgb[:10] == 40).all()  # no evidence: flat dark grey, whatever the depth
    confidence[:10] = 0.35  # half-way up the fade: between the two
    mid = colorize_depth(depth, confidence, depth_range=(1.0, 3.0)).astype(int)[:10]
    assert (np.abs(mid - 40) <= np.abs(sure[:10] - 40)).all() and (mid != 40).any() and (mid != sure[:10]).any()
