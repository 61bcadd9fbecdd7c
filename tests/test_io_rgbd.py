import json

import cv2
import numpy as np
import pytest

from focalcli.errors import InputError
from focalcli.io.images import write_image
from focalcli.io.rgbd import PSEUDO_FAR_M, PSEUDO_NEAR_M, find_rgbd, load_rgbd, read_pfm, split_scenes

H, W = 12, 16


def _rgb(seed=0):
    return np.random.default_rng(seed).random((H, W, 3)).astype(np.float32)


def _depth_m():
    return np.linspace(0.5, 4.0, H * W, dtype=np.float32).reshape(H, W)


def _write_pfm(path, arr, little=True):
    body = np.ascontiguousarray(arr[::-1]).astype("<f4" if little else ">f4").tobytes()
    path.write_bytes(f"Pf\n{arr.shape[1]} {arr.shape[0]}\n{-1.0 if little else 1.0}\n".encode() + body)


def test_folder_pairs_decode_units(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    d = _depth_m()
    for name in ("a", "b", "c"):
        write_image(tmp_path / "rgb" / f"{name}.png", _rgb())
    np.save(tmp_path / "depth" / "a.npy", d)
    cv2.imwrite(str(tmp_path / "depth" / "b.png"), np.rint(d * 1000).astype(np.uint16))  # millimetres
    _write_pfm(tmp_path / "depth" / "c.pfm", d)
    scenes = find_rgbd(tmp_path)
    assert [s.name for s in scenes] == ["a", "b", "c"]
    for s in scenes:
        sample = load_rgbd(s)
        assert sample.rgb.shape == (3, H, W) and sample.depth.shape == (1, H, W)
        assert np.allclose(sample.depth[0].numpy(), d, atol=1e-3), s.name
    # --depth-scale: the same png read as 1/5000 m units
    b = [s for s in find_rgbd(tmp_path, depth_scale=5000.0) if s.name == "b"][0]
    assert np.allclose(load_rgbd(b).depth[0].numpy(), d / 5, atol=1e-3)


def test_folder_pairs_errors(tmp_path):
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    write_image(tmp_path / "rgb" / "a.png", _rgb())
    with pytest.raises(InputError, match="has no depth"):
        find_rgbd(tmp_path)
    np.save(tmp_path / "depth" / "a.npy", np.ones((H, W + 1), np.float32))
    with pytest.raises(InputError, match="depth is 17x12 but rgb is 16x12"):
        load_rgbd(find_rgbd(tmp_path)[0])
    cv2.imwrite(str(tmp_path / "depth" / "a.png"), np.ones((H, W), np.uint8))
    (tmp_path / "depth" / "a.npy").unlink()
    with pytest.raises(InputError, match="16-bit"):
        load_rgbd(find_rgbd(tmp_path)[0])
    with pytest.raises(InputError, match="no RGB-D scenes"):
        find_rgbd(tmp_path / "rgb")
    with pytest.raises(InputError, match="no such folder"):
        find_rgbd(tmp_path / "missing")


def test_metric3d_annotations_give_the_scale(tmp_path):
    for sub in ("rgb", "depth"):
        (tmp_path / "kitti" / sub).mkdir(parents=True)
    write_image(tmp_path / "kitti" / "rgb" / "x.png", _rgb())
    cv2.imwrite(str(tmp_path / "kitti" / "depth" / "y.png"), np.rint(_depth_m() * 256).astype(np.uint16))
    ann = {"files": [{"rgb": "data/kitti/rgb/x.png", "depth": "data/kitti/depth/y.png", "depth_scale": 256.0,
                      "cam_in": [700.0, 700.0, 8.0, 6.0]}]}
    (tmp_path / "kitti" / "test_annotations.json").write_text(json.dumps(ann))
    (s,) = find_rgbd(tmp_path)
    assert s.name == "kitti__x" and s.depth_scale == 256.0
    sample = load_rgbd(s)
    assert np.allclose(sample.depth[0].numpy(), _depth_m(), atol=3e-3)
    assert sample.meta["intrinsics"] == [700.0, 700.0, 8.0, 6.0]


def test_middlebury_disparity_to_pseudo_depth(tmp_path):
    scene = tmp_path / "Aloe"
    scene.mkdir()
    write_image(scene / "view1.png", _rgb())
    disp = np.tile(np.arange(W, dtype=np.uint8) * 10 + 50, (H, 1))  # 50 .. 200
    disp[0, 0] = 0  # unknown
    cv2.imwrite(str(scene / "disp1.png"), disp)
    (s,) = find_rgbd(tmp_path)
    assert (s.name, s.kind) == ("Aloe", "middlebury")
    sample = load_rgbd(s)
    depth = sample.depth[0].numpy()
    assert depth[0, 0] == 0 and sample.meta["pseudo_depth"] is True
    assert depth[1, -1] == pytest.approx(PSEUDO_NEAR_M) and depth[1, 0] == pytest.approx(PSEUDO_FAR_M, rel=1e-5)
    inv = 1 / depth[1]
    assert np.allclose(np.diff(inv), np.diff(inv)[0], rtol=1e-4)  # inverse depth affine in disparity


def test_hci_pfm_disparity(tmp_path):
    write_image(tmp_path / "input_Cam040.png", _rgb())
    disp = np.tile(np.linspace(-2, 2, W, dtype=np.float32), (H, 1))
    disp[0] = -2  # top row differs: checks the bottom-up row order
    _write_pfm(tmp_path / "gt_disp_lowres.pfm", disp)
    assert np.array_equal(read_pfm(tmp_path / "gt_disp_lowres.pfm"), disp)
    (s,) = find_rgbd(tmp_path)
    depth = load_rgbd(s).depth[0].numpy()
    assert depth[5, -1] == pytest.approx(PSEUDO_NEAR_M) and depth[5, 0] == pytest.approx(PSEUDO_FAR_M)
    assert np.allclose(depth[0], PSEUDO_FAR_M)


def test_open3d_encodings(tmp_path):
    d = _depth_m()
    for prefix in ("NYU", "SUN", "TUM"):
        write_image(tmp_path / f"{prefix}_color.png", _rgb())
    raw = np.rint(1092.5 - 351.3 / d).astype("<u2")
    raw[0, 0] = 2047
    (tmp_path / "NYU_depth.pgm").write_bytes(f"P5\n{W} {H}\n65535\n".encode() + raw.tobytes())
    mm = np.rint(d * 1000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "SUN_depth.png"), ((mm << 3) | (mm >> 13)).astype(np.uint16))
    cv2.imwrite(str(tmp_path / "TUM_depth.png"), np.rint(d * 5000).astype(np.uint16))
    scenes = {s.kind: load_rgbd(s) for s in find_rgbd(tmp_path)}
    assert set(scenes) == {"nyu-raw", "sun", "tum"}
    nyu = scenes["nyu-raw"].depth[0].numpy()
    assert nyu[0, 0] == 0
    assert np.allclose(nyu.ravel()[1:], d.ravel()[1:], rtol=0.02)  # raw counts are coarse far away
    assert np.allclose(scenes["sun"].depth[0].numpy(), d, atol=1e-3)
    assert np.allclose(scenes["tum"].depth[0].numpy(), d, atol=2e-4)


def test_nyu_labeled_mat(tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, H, W, 3), dtype=np.uint8)  # what MATLAB shows: H x W x 3 x N
    depths = np.stack([_depth_m(), _depth_m()[::-1]])  # N x H x W metres
    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as f:
        # MATLAB v7.3 stores column-major, so h5py sees the axes reversed: (N, 3, W, H) and (N, W, H)
        f["images"] = images.transpose(0, 3, 2, 1)
        f["depths"] = depths.transpose(0, 2, 1)
    scenes = find_rgbd(tmp_path)
    assert [s.name for s in scenes] == ["nyu_depth_v2_labeled_00000", "nyu_depth_v2_labeled_00001"]
    sample = load_rgbd(scenes[1])
    assert sample.rgb.shape == (3, H, W)
    assert np.allclose(sample.rgb.numpy().transpose(1, 2, 0), images[1] / 255.0, atol=1e-6)
    assert np.allclose(sample.depth[0].numpy(), depths[1])
    (tmp_path / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file, not hdf5")
    with pytest.raises(InputError, match="v7.3"):
        find_rgbd(tmp_path)


def test_shared_rgbd_scenes_all_decode(shared_data):
    scenes = find_rgbd(shared_data / "rgbd")
    assert len(scenes) >= 40
    kinds = {s.kind for s in scenes}
    assert {"folder", "middlebury", "hci4d", "nyu-raw", "sun", "tum"} <= kinds
    for s in scenes[::6]:
        sample = load_rgbd(s)
        valid = sample.depth[sample.depth > 0]
        assert valid.numel() > 0 and float(valid.max()) < 200, s.name


def test_symlinked_scenes_are_found_and_cycles_ignored(tmp_path):
    data = tmp_path / "data" / "Aloe"
    data.mkdir(parents=True)
    write_image(data / "view1.png", _rgb())
    cv2.imwrite(str(data / "disp1.png"), np.full((H, W), 40, np.uint8))
    root = tmp_path / "root"
    root.mkdir()
    (root / "Aloe").symlink_to(data, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert [s.name for s in find_rgbd(root)] == ["Aloe"]


def test_split_scenes_holds_out_every_kth_from_the_first():
    scenes = list(range(11))  # stands in for find_rgbd's list: only the order matters
    train, held = split_scenes(scenes, 5)
    assert held == [0, 5, 10]
    assert train == [1, 2, 3, 4, 6, 7, 8, 9]
    assert split_scenes(scenes, 0) == (scenes, [])
    assert split_scenes(scenes, 1) == ([], scenes)
    with pytest.raises(ValueError, match="holdout"):
        split_scenes(scenes, -1)


def test_split_scenes_of_the_shared_rgbd_folder(shared_data):
    scenes = find_rgbd(shared_data / "rgbd")
    train, held = split_scenes(scenes, 5)
    assert [s.name for s in held] == [s.name for s in scenes[::5]]
    assert len(train) + len(held) == len(scenes) and not {s.name for s in train} & {s.name for s in held}


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (b"P5\nW H\n65535\n", "bad PGM header"),  # int() of a non-number
        (b"P5\n4 x3\n65535\n", "bad PGM header"),
        (b"P5\n0 3\n65535\n", "size 0x3"),
        (b"P5\n4 3\nmax\n", "bad PGM header"),
        (b"P5\n4 3\n255\n", "maxval 255"),
        (b"P6\n4 3\n65535\n", "not a binary PGM"),
        (b"P5\n4 3\n", "not a binary PGM"),
    ],
)
def test_bad_pgm_header_is_an_input_error(tmp_path, header, fragment):
    write_image(tmp_path / "NYU_color.png", _rgb())
    (tmp_path / "NYU_depth.pgm").write_bytes(header + bytes(2 * W * H))
    (scene,) = find_rgbd(tmp_path)
    with pytest.raises(InputError, match=fragment):
        load_rgbd(scene)


def test_truncated_pgm_is_an_input_error(tmp_path):
    write_image(tmp_path / "NYU_color.png", _rgb())
    (tmp_path / "NYU_depth.pgm").write_bytes(f"P5\n{W} {H}\n65535\n".encode() + bytes(2 * W * H - 2))
    (scene,) = find_rgbd(tmp_path)
    with pytest.raises(InputError, match="truncated PGM"):
        load_rgbd(scene)
