import random

import numpy as np
import pytest
import torch

from focalcli.errors import ModelFileError
from focalcli.train.checkpoint import load_checkpoint, restore_rng, save_checkpoint, unwrap_model
from focalcli.train.distributed import dist_info
from focalcli.train.schedule import lr_at


def test_lr_schedule():
    kw = {"base_lr": 1.0, "warmup_steps": 4, "total_steps": 14, "min_lr": 0.1}
    assert [lr_at(s, **kw) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, **kw) == 1.0
    assert lr_at(9, **kw) == pytest.approx(0.55)  # halfway: (1 + 0.1) / 2
    assert lr_at(14, **kw) == pytest.approx(0.1) and lr_at(100, **kw) == 0.1
    assert lr_at(0, base_lr=1.0, warmup_steps=0, total_steps=10) == 1.0


def test_dist_info_from_env(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert dist_info().world_size == 1 and not dist_info().enabled
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = dist_info()
    assert (info.rank, info.world_size, info.local_rank, info.is_main, info.enabled) == (1, 2, 1, False, True)


def test_checkpoint_roundtrip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    path = save_checkpoint(tmp_path / "c.pt", model=model, optimizer=opt, step=7, config={"a": 1}, seed=3, best=0.5)
    expect = (torch.rand(2), np.random.rand(), random.random())
    state = load_checkpoint(path)
    assert state["step"] == 7 and state["config"] == {"a": 1} and state["best"] == 0.5
    restore_rng(state["rng"])
    assert torch.equal(torch.rand(2), expect[0]) and np.random.rand() == expect[1] and random.random() == expect[2]
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(state["model"])
    assert torch.equal(fresh.weight, model.weight)


def test_unwrap_compiled_keys():
    class Wrapped(torch.nn.Module):  # what torch.compile's OptimizedModule looks like from outside
        def __init__(self, m):
            super().__init__()
            self._orig_mod = m

    inner = torch.nn.Linear(2, 2)
    assert unwrap_model(Wrapped(inner)) is inner
    assert list(unwrap_model(Wrapped(inner)).state_dict()) == ["weight", "bias"]


def test_checkpoint_refuses_foreign_files(tmp_path):
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(ModelFileError, match="not a focal training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ModelFileError, match="no such"):
        load_checkpoint(tmp_path / "none.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "x", "obj": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelFileError):
        load_checkpoint(tmp_path / "evil.pt")
