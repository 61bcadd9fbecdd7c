import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from focalcli.errors import InputError
from focalcli.io.images import write_image
from focalcli.io.stack import FocalStack, natural_key, read_stack, scan_stack, write_stack
from tests.bad_stacks import BAD, _bad_stack, _frames
from tests.conftest import write_frames


def test_natural_sort_without_stack_json(tmp_path):
    folder = write_frames(tmp_path / "s", _frames(3), names=["img10.png", "img2.png", "img1.png"])
    sf = scan_stack(folder)
    assert sf.names == ["img1.png", "img2.png", "img10.png"]
    assert sf.focus_distances_m is None and sf.distance_source is None
    assert sorted(["a10", "a9", "A1"], key=natural_key) == ["A1", "a9", "a10"]


def test_stack_json_orders_by_focus_distance(tmp_path):
    folder = write_frames(tmp_path / "s", _frames(3), focus=np.array([2.0, 0.5, 1.0]),
                          camera={"focal_length_mm": 50, "f_number": 2.8, "pixel_pitch_um": 4.0})
    sf = scan_stack(folder)
    assert sf.focus_distances_m == (0.5, 1.0, 2.0)
    assert sf.names == ["frame_01.png", "frame_02.png", "frame_00.png"]
    assert sf.camera.f_number == 2.8 and sf.distance_source == "stack.json"
    stack = read_stack(folder)
    assert stack.frames.shape == (3, 3, 8, 10) and stack.frames.dtype == torch.float32
    assert torch.allclose(stack.focus_distances_m, torch.tensor([0.5, 1.0, 2.0]))


def test_16_bit_and_gray_frames(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    write_image(folder / "a.png", np.full((8, 9), 0.5, np.float32), bit_depth=16)
    write_image(folder / "b.png", np.full((8, 9), 0.25, np.float32), bit_depth=16)
    sf = scan_stack(folder)
    assert sf.info.bit_depth == 16
    stack = read_stack(folder)
    assert stack.frames.shape == (2, 3, 8, 9)
    assert abs(float(stack.frames[0].mean()) - 0.5) < 1e-4


def test_exif_subject_distance(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    for i, dist in enumerate([1.5, 0.7]):
        im = Image.fromarray((_frames(1)[0] * 255).astype(np.uint8))
        exif = im.getexif()
        ifd = exif.get_ifd(0x8769)
        ifd[0x9206] = dist  # SubjectDistance (m)
        ifd[0x829D] = 4.0  # FNumber
        buf = io.BytesIO()
        im.save(buf, "JPEG", exif=exif.tobytes())
        (folder / f"f{i}.jpg").write_bytes(buf.getvalue())
    sf = scan_stack(folder)
    assert sf.distance_source == "exif"
    assert sf.focus_distances_m == (0.7, 1.5) and sf.names == ["f1.jpg", "f0.jpg"]
    assert sf.camera.f_number == 4.0


def test_exif_pixel_pitch_follows_the_stored_resolution(tmp_path):
    """FocalPlaneXResolution (pixels per inch or cm of sensor) gives the pixel pitch; a frame stored smaller than
    PixelXDimension (a downscaled JPEG) has proportionally larger pixels."""
    folder = tmp_path / "s"
    folder.mkdir()
    for i in range(2):
        im = Image.fromarray((_frames(1)[0] * 255).astype(np.uint8))  # stored width: _frames' width
        exif = im.getexif()
        ifd = exif.get_ifd(0x8769)
        ifd[0xA20E] = 2000.0  # FocalPlaneXResolution: 2000 pixels per cm -> 5 um pixels
        ifd[0xA210] = 3  # unit: centimetres
        ifd[0xA002] = 2 * im.size[0]  # the camera's full width: twice the stored one
        buf = io.BytesIO()
        im.save(buf, "JPEG", exif=exif.tobytes())
        (folder / f"f{i}.jpg").write_bytes(buf.getvalue())
    assert scan_stack(folder).camera.pixel_pitch_um == pytest.approx(10.0)


def test_write_stack_roundtrip(tmp_path):
    stack = FocalStack(frames=torch.rand(2, 3, 8, 9), focus_distances_m=torch.tensor([0.4, 0.9]))
    write_stack(stack, tmp_path / "out", extra={"source": "test"})
    meta = json.loads((tmp_path / "out" / "stack.json").read_text())
    assert meta["source"] == "test" and meta["focus_distances_m"] == [0.4, 0.9]
    back = read_stack(tmp_path / "out")
    assert (back.frames - stack.frames).abs().max() < 1 / 255


@pytest.mark.parametrize("kind", BAD)
def test_bad_stacks_raise_input_error(tmp_path, kind):
    folder, fragment = _bad_stack(tmp_path, kind)
    with pytest.raises(InputError, match=fragment):
        read_stack(folder)


def test_kept_frames_are_decoded_once_and_read_only(plane_stack, monkeypatch):
    import focalcli.io.focalstack as focalstack
    from focalcli.io.stack import KeptFrames, keep_frames
    from focalcli.predict import predict

    folder, _ = plane_stack
    sf = scan_stack(folder)
    decoded = []
    decode = focalstack.decode_image
    monkeypatch.setattr(focalstack, "decode_image", lambda p: decoded.append(p.name) or decode(p))
    kept = keep_frames(sf)
    assert isinstance(kept, KeptFrames) and keep_frames(kept) is kept
    a = kept.frame(3, native=True)
    assert kept.frame(3, native=True) is a and not a.flags.writeable and decoded == [sf.names[3]]
    assert np.array_equal(kept.frame(3), sf.frame(3)) and kept.frame(3).flags.writeable
    assert (kept.names, kept.size, kept.distances(), kept.camera) == (sf.names, sf.size, sf.distances(), sf.camera)
    two = keep_frames(sf, budget_bytes=2 * a.nbytes)  # frames beyond the budget are decoded whenever read
    decoded.clear()
    for i in (0, 1, 2, 2, 1):
        two.frame(i)
    assert decoded == [sf.names[i] for i in (0, 1, 2, 2)]
    in_memory = read_stack(folder)
    assert keep_frames(in_memory) is in_memory

    two.last_pass()  # the last reader: kept frames are dropped as they are read, and no new one is kept
    decoded.clear()
    for i in (0, 0, 1, 3, 3):
        two.frame(i)
    assert decoded == [sf.names[i] for i in (0, 3, 3)] and not two._kept

    decoded.clear()  # the alignment check reads six of the ten frames, the depth pass all: each is decoded once
    result = predict(sf, align="auto")
    assert not result.info["align"]["applied"] and sorted(decoded) == sorted(sf.names)
    assert np.array_equal(result.depth, predict(sf, align="off").depth)
