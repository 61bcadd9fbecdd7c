"""Reading a PNG's header must not decode its pixels (Pillow's getexif on a PNG decodes the whole image)."""

import cv2
import numpy as np
import pytest
from PIL import Image

from focalcli.io.images import has_exif, probe_image


def test_png_without_exif_is_probed_without_decoding(tmp_path, monkeypatch):
    p = tmp_path / "a.png"
    cv2.imwrite(str(p), np.zeros((20, 30, 3), np.uint8))
    assert not has_exif(p)

    def boom(*args, **kwargs):
        raise AssertionError("Pillow opened the file")

    monkeypatch.setattr(Image, "open", boom)
    info = probe_image(p)
    assert (info.width, info.height, info.bit_depth) == (30, 20, 8)


@pytest.mark.parametrize(("mode", "shape", "dtype", "channels", "bits"), [
    ("gray8", (5, 7), np.uint8, 1, 8), ("gray16", (5, 7), np.uint16, 1, 16), ("rgb16", (5, 7, 3), np.uint16, 3, 16),
    ("rgba8", (5, 7, 4), np.uint8, 4, 8)])
def test_png_header_agrees_with_pillow(tmp_path, mode, shape, dtype, channels, bits):
    p = tmp_path / f"{mode}.png"
    cv2.imwrite(str(p), np.zeros(shape, dtype))
    info = probe_image(p)
    assert (info.width, info.height, info.channels, info.bit_depth) == (7, 5, channels, bits)


def test_png_exif_orientation_is_still_read(tmp_path):
    p = tmp_path / "r.png"
    im = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
    exif = im.getexif()
    exif[0x0112] = 6  # rotated 90 degrees on display
    im.save(p, exif=exif.tobytes())
    assert has_exif(p)
    info = probe_image(p)
    assert (info.width, info.height) == (20, 30)
