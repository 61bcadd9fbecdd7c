import io

import cv2
import numpy as np
import pytest
from PIL import Image

from focalcli.errors import InputError
from focalcli.io.images import probe_image, read_image, write_image


@pytest.mark.parametrize("bits", [8, 16])
def test_png_roundtrip_keeps_bit_depth(tmp_path, bits):
    img = np.random.default_rng(0).random((12, 17, 3)).astype(np.float32)
    write_image(tmp_path / "a.png", img, bit_depth=bits)
    back, got_bits = read_image(tmp_path / "a.png")
    assert got_bits == bits
    assert back.shape == (12, 17, 3) and back.dtype == np.float32
    assert np.abs(back - img).max() <= 0.5 / (2**bits - 1) + 1e-6
    assert probe_image(tmp_path / "a.png").bit_depth == bits


def test_gray_and_rgba_become_rgb(tmp_path):
    cv2.imwrite(str(tmp_path / "g.png"), np.full((5, 6), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((5, 6, 4), 200, np.uint8))
    g, _ = read_image(tmp_path / "g.png")
    a, _ = read_image(tmp_path / "a.png")
    assert g.shape == a.shape == (5, 6, 3)
    assert np.allclose(g, 128 / 255) and np.allclose(a, 200 / 255)


def test_exif_orientation_is_honoured(tmp_path):
    im = Image.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    (tmp_path / "r.jpg").write_bytes(buf.getvalue())
    img, _ = read_image(tmp_path / "r.jpg")
    assert img.shape[:2] == (40, 20)
    info = probe_image(tmp_path / "r.jpg")
    assert (info.width, info.height) == (20, 40)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image_is_an_input_error(tmp_path, suffix):
    write_image(tmp_path / f"a{suffix}", np.random.default_rng(0).random((64, 64, 3)).astype(np.float32))
    data = (tmp_path / f"a{suffix}").read_bytes()
    (tmp_path / f"t{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated|not a readable"):
        read_image(tmp_path / f"t{suffix}")


def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(InputError, match="x.png"):
        read_image(tmp_path / "x.png")
    with pytest.raises(InputError, match="x.png"):
        probe_image(tmp_path / "x.png")
