"""Model files: export + strict load round trip, metadata, and every way a file can be wrong."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from focalcli.errors import ModelFileError, OutputError
from focalcli.models import ModelConfig, build_model, config_from_dict
from focalcli.weights import export_model, list_models, load_model, read_metadata
from tests.models_common import MICRO, stack


@pytest.fixture
def exported(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(**MICRO, focus_distance_aware=True))
    return model, export_model(model, tmp_path / "m.safetensors", trained_on="unit test")


def test_round_trip_gives_identical_output(exported):
    model, path = exported
    loaded = load_model(path)
    assert loaded.config == model.config and not loaded.training
    frames, fd = stack(2, 3, 24, 40)
    with torch.no_grad():
        assert torch.equal(model.eval()(frames, fd), loaded(frames, fd))


def test_metadata(exported):
    model, path = exported
    meta = read_metadata(path)
    assert meta["format_version"] == "1" and meta["model"] == "custom" and meta["trained_on"] == "unit test"
    assert config_from_dict(json.loads(meta["config"])) == model.config
    assert meta["focal_version"]


def test_export_refuses_to_overwrite(exported, tmp_path):
    model, path = exported
    with pytest.raises(OutputError, match="exists"):
        export_model(model, path)
    with pytest.raises(OutputError, match="extension"):
        export_model(model, tmp_path / "m.pt")
    export_model(model, path, overwrite=True)


def _rewrite(path, out, *, tensors=None, metadata=None):
    sd = load_file(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    if tensors:
        tensors(sd)
    save_file(sd, str(out), metadata=metadata(meta) if metadata else meta)
    return out


@pytest.mark.parametrize(("tensors", "message"), [
    (lambda sd: sd.pop("stem.proj.bias"), "1 missing tensor"),
    (lambda sd: sd.__setitem__("extra.weight", torch.zeros(2)), "1 unexpected tensor"),
    (lambda sd: sd.__setitem__("stem.proj.bias", torch.zeros(3)), "1 wrong shape tensor"),
])
def test_mismatching_tensors(exported, tmp_path, tensors, message):
    bad = _rewrite(exported[1], tmp_path / "bad.safetensors", tensors=tensors)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


@pytest.mark.parametrize(("metadata", "message"), [
    (lambda m: {k: v for k, v in m.items() if k != "config"}, "metadata lacks config"),
    (lambda m: {**m, "format_version": "9"}, "format '9'"),
    (lambda m: {**m, "config": "{not json"}, "config cannot be used"),
    (lambda m: {**m, "config": json.dumps({**json.loads(m["config"]), "colour": 1})}, "unknown key"),
    (lambda m: {**m, "config": json.dumps({**json.loads(m["config"]), "width": 48})}, "do not match"),
])
def test_bad_metadata(exported, tmp_path, metadata, message):
    bad = _rewrite(exported[1], tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(ModelFileError, match=message):
        load_model(bad)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "none.safetensors")
    pickle = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickle)
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        load_model(pickle)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(ModelFileError, match="not a focal model file"):
        load_model(plain)


def test_error_messages_are_one_line(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError) as err:
        load_model(tmp_path / "x.safetensors")
    assert "\n" not in str(err.value)


def test_list_models_contract():
    rows = list_models()
    assert {r["name"] for r in rows} >= {"focdepthformer-base", "focdepthformer-tiny"}
    for r in rows:
        assert isinstance(r["params"], int) and isinstance(r["focus_distance_aware"], bool)
        # exactly the default preset ships weights (package data focalcli/pretrained/NAME.safetensors)
        assert r["weights_shipped"] is (r["name"] == "focusvolume")


@pytest.mark.parametrize(("change", "message"), [
    ({"heads": 0}, "heads"),
    ({"patch_size": 0}, "patch_size"),
    ({"width": -192}, "width"),
    ({"width": 65536}, "width"),
    ({"mlp_ratio": float("nan")}, "mlp_ratio"),
    ({"decoder_channels": (8, 0, 16, 16)}, "decoder_channels"),
    ({"default_near_m": float("inf")}, "default_near_m"),
])
def test_config_ranges_are_checked_before_anything_divides(change, message):
    from focalcli.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{**MICRO, **change})


def test_model_size_is_bounded_on_the_meta_device(exported, tmp_path):
    import time

    from focalcli.errors import ConfigError
    from focalcli.weights import check_model_size

    huge = ModelConfig(**{**MICRO, "width": 16384, "lstm_hidden": 16384, "heads": 16})  # every field in range
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="parameters"):
        check_model_size(lambda: build_model(huge))  # ~13 G parameters: would need 50 GB if allocated
    assert time.perf_counter() - t0 < 10
    meta = check_model_size(lambda: build_model(ModelConfig(**MICRO)))
    assert all(t.device.type == "meta" for t in meta.state_dict().values())
    bad = _rewrite(exported[1], tmp_path / "huge.safetensors",
                   metadata=lambda m: {**m, "config": json.dumps({**json.loads(m["config"]), "width": 16384,
                                                                  "lstm_hidden": 16384, "heads": 16})})
    with pytest.raises(ModelFileError, match="parameters"):
        load_model(bad)
