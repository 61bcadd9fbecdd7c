import numpy as np
import pytest
import torch

from focalcli.data import DataSpec, parse_data_spec, sample_generator
from focalcli.data.ddff import DDFF_BASELINE_FOCAL, DDFFSource, ddff_focus_distances
from focalcli.data.fod500 import FoD500Source
from focalcli.data.stacks import StackFolderSource
from focalcli.errors import ConfigError, InputError
from focalcli.io.exr import exr_backend
from focalcli.train.mixture import MixtureDataset, StepBatchSampler
from tests.datasets_tiny import write_ddff_h5, write_fod500, write_stacks

needs_exr = pytest.mark.skipif(exr_backend() is None, reason="no EXR codec (pip install 'focalcli[exr]')")


@pytest.mark.parametrize(("text", "spec"), [
    ("synth:../shared/data/rgbd:0.5", DataSpec("synth", "../shared/data/rgbd", 0.5)),
    ("procedural:0.5", DataSpec("procedural", None, 0.5)),
    ("procedural", DataSpec("procedural", None, 1.0)),
    ("ddff:data/ddff.h5", DataSpec("ddff", "data/ddff.h5", 1.0)),
    ("stacks:C:/x:2", DataSpec("stacks", "C:/x", 2.0)),
])
def test_parse_data_spec(text, spec):
    assert parse_data_spec(text) == spec


@pytest.mark.parametrize(("text", "message"), [
    ("nyu:x", "unknown kind"), ("ddff", "needs a path"), ("procedural:-1", "positive"), ("procedural:a", "positive"),
])
def test_parse_data_spec_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_data_spec(text)


def test_ddff_reader(tmp_path):
    path = write_ddff_h5(tmp_path / "ddff.h5")
    src = DDFFSource(path, split="val")
    assert len(src) == 2
    item = src.item(1)
    assert item["frames"].shape == (10, 3, 12, 16) and item["frames"].dtype == torch.float32
    assert float(item["frames"].min()) >= 0 and float(item["frames"].max()) <= 1
    import h5py

    with h5py.File(path) as f:
        disp = f["disp_val"][1]
        frame = f["stack_val"][1, 3]
    np.testing.assert_allclose(item["frames"][3].permute(1, 2, 0).numpy() * 255, frame, atol=1e-3)
    depth = item["depth"][0].numpy()
    assert (depth[0, :3] == 0).all()
    np.testing.assert_allclose(depth[1:], DDFF_BASELINE_FOCAL / disp[1:], rtol=1e-6)
    fd = item["focus_distances_m"]
    assert fd[0] == pytest.approx(0.5) and fd[-1] == pytest.approx(7.0) and bool((fd.diff() > 0).all())
    np.testing.assert_allclose(np.diff(1 / ddff_focus_distances().numpy()), -(2 - 1 / 7) / 9)
    crop = src.draw(sample_generator(0, 1), (8, 8), None)
    assert crop["frames"].shape == (10, 3, 8, 8) and crop["depth"].shape == (1, 8, 8)


def test_ddff_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        DDFFSource(tmp_path / "missing.h5")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(InputError, match="not a readable HDF5"):
        DDFFSource(tmp_path / "bad.h5")
    import h5py

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["stack_train"] = np.zeros((1, 10, 4, 4, 3), np.uint8)
    with pytest.raises(InputError, match="no disp_train"):
        DDFFSource(tmp_path / "x.h5")


def test_ddff_pickles_for_workers(tmp_path):
    import pickle

    src = DDFFSource(write_ddff_h5(tmp_path / "d.h5"))
    clone = pickle.loads(pickle.dumps(src))
    assert torch.equal(clone.item(0)["depth"], src.item(0)["depth"])


@needs_exr
def test_fod500_reader(tmp_path):
    folder = write_fod500(tmp_path / "fod", scenes=3)
    train = FoD500Source(folder, split="train", train_scenes=2)
    test = FoD500Source(folder, split="test", train_scenes=2)
    assert (len(train), len(test)) == (2, 1)
    item = test.item(0)
    assert item["frames"].shape == (5, 3, 10, 12) and item["depth"].shape == (1, 10, 12)
    assert item["focus_distances_m"].tolist() == pytest.approx([0.1, 0.15, 0.3, 0.7, 1.5])
    assert item["name"] == "000002Dpt"
    from focalcli.io.exr import read_exr

    np.testing.assert_array_equal(item["depth"][0].numpy(), read_exr(folder / "000002Dpt.exr"))


def test_fod500_layout_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        FoD500Source(tmp_path / "nope")
    (tmp_path / "000000Dpt.exr").write_bytes(b"")
    (tmp_path / "000000_00All.tif").write_bytes(b"")
    with pytest.raises(InputError, match="1 \\*All.tif files for 1 scenes"):
        FoD500Source(tmp_path)


def test_stack_folders(tmp_path):
    src = StackFolderSource(write_stacks(tmp_path / "st", count=2))
    assert len(src) == 2
    item = src.item(0)
    assert item["frames"].shape == (3, 3, 16, 20) and item["depth"][0, 0, 0] == 0
    with pytest.raises(InputError, match="no NAME/stack/"):
        StackFolderSource(tmp_path)


def test_mixture_is_a_function_of_seed_step_and_index(tmp_path):
    a = StackFolderSource(write_stacks(tmp_path / "a", count=2))
    b = DDFFSource(write_ddff_h5(tmp_path / "d.h5"))
    ds = MixtureDataset([a, b], [1.0, 3.0], seed=7, crop=(8, 8))
    choices = [ds.step_choice(s)[0] for s in range(200)]
    assert 0.6 < sum(choices) / 200 < 0.9  # ~3/4 from the second source
    x, y = ds[(5, 1)], ds[(5, 1)]
    assert all(torch.equal(x[k], y[k]) for k in x)
    assert not torch.equal(ds[(5, 0)]["frames"], x["frames"])
    other = MixtureDataset([a, b], [1.0, 3.0], seed=8, crop=(8, 8))
    assert not torch.equal(other[(5, 1)]["frames"], x["frames"])


def test_step_batch_sampler_splits_the_global_batch():
    one = list(StepBatchSampler(3, 5, 4))
    r0, r1 = list(StepBatchSampler(3, 5, 4, rank=0, world_size=2)), list(StepBatchSampler(3, 5, 4, 1, 2))
    assert one[0] == [(3, 0), (3, 1), (3, 2), (3, 3)]
    assert [x + y for x, y in zip(r0, r1, strict=True)] == one
    with pytest.raises(ConfigError, match="multiple"):
        StepBatchSampler(0, 1, 3, 0, 2)


def test_loader_workers_give_the_same_batches(tmp_path):
    from torch.utils.data import DataLoader

    ds = MixtureDataset([StackFolderSource(write_stacks(tmp_path / "a"))], [1.0], seed=1, crop=(8, 8))
    batches = [list(DataLoader(ds, batch_sampler=StepBatchSampler(0, 3, 2), num_workers=w)) for w in (0, 2)]
    for x, y in zip(*batches, strict=True):
        assert torch.equal(x["frames"], y["frames"]) and torch.equal(x["depth"], y["depth"])


def test_stack_folders_decode_only_the_drawn_sub_schedule(tmp_path, monkeypatch):
    from focalcli.data import build_source, parse_data_spec, sample_generator
    from focalcli.io.stack import StackFolder

    root = write_stacks(tmp_path / "data", count=2, n=6, h=20, w=24)
    src = build_source(parse_data_spec(f"stacks:{root}"), train=True)
    decoded = []
    original = StackFolder.frame
    monkeypatch.setattr(StackFolder, "frame", lambda self, i, native=False: decoded.append(i) or original(self, i,
                                                                                                           native))
    s = src.draw(sample_generator(0, 1), (16, 16), 3)
    assert s["frames"].shape == (3, 3, 16, 16) and len(decoded) == 3  # not all six
    assert bool((s["focus_distances_m"].diff() > 0).all())
