"""Issue 14 for ``focal info``, ``--help``, choices, shell completion and the align progress passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from focalcli.cli.app import app
from focalcli.io.images import write_image
from tests import synthetic
from tests.cli.asserts import assert_one_line_error
from tests.conftest import write_frames

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})  # help on one line per option


@pytest.fixture
def stack_with_fused_result(tmp_path):
    """Six frames of two planes, plus ``expected.png``: the sharp scene, as focus-stack ships its fused result."""
    frames, _, _ = synthetic.step_planes(h=96, w=128, n=6)
    folder = write_frames(tmp_path / "pcb", frames, names=[f"pcb_{i:03d}.png" for i in range(6)])
    write_image(folder / "expected.png", synthetic.texture(96, 128, seed=1))
    return folder


def test_info_flags_an_all_in_focus_image_among_the_frames(stack_with_fused_result):
    r = run("info", stack_with_fused_result, "--json")
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["frames"][0] == "expected.png"
    assert [x["frame"] for x in s["suspects"]] == ["expected.png"]
    assert "all-in-focus" in s["suspects"][0]["why"] and "name does not follow" in s["suspects"][0]["why"]
    text = run("info", stack_with_fused_result).stdout
    assert "suspect   expected.png" in text


def test_info_flags_nothing_in_a_plain_stack(plane_stack):
    folder, _ = plane_stack
    s = json.loads(run("info", folder, "--json").stdout)
    assert s["suspects"] == [] and s["odd_size"] == []
    assert s["order"] == "focus distance (from stack.json), near to far" and s["notes"] == []


def test_info_says_what_it_assumes(tiny_stack):
    s = json.loads(run("info", tiny_stack, "--json").stdout)
    assert "assumed near to far" in s["order"]
    assert any("near to far in file-name order" in n for n in s["notes"])
    # f-number: no command needs it, so it is not "missing"; focal length and pixel pitch only --ply needs
    assert s["optional"] == ["camera.f_number"]
    assert s["needed_for"] == {"camera.focal_length_mm": "predict --ply", "camera.pixel_pitch_um": "predict --ply"}
    text = run("info", tiny_stack).stdout
    assert "missing   camera.pixel_pitch_um (only predict --ply needs it)" in text
    assert "unknown   camera.f_number (no command needs it)" in text


def test_info_warns_on_two_frames(tmp_path):
    frames, _, _ = synthetic.step_planes(h=32, w=40, n=2)
    s = json.loads(run("info", write_frames(tmp_path / "two", frames), "--json").stdout)
    assert any(n.startswith("2 frames: depth from focus can only tell two depth levels apart") for n in s["notes"])


def test_info_reports_a_frame_of_another_size(tmp_path):
    frames, _, _ = synthetic.step_planes(h=32, w=40, n=3)
    folder = write_frames(tmp_path / "s", frames)
    write_image(folder / "zz_result.png", np.full((64, 80, 3), 0.5, np.float32))
    r = run("info", folder)
    assert "suspect   zz_result.png: size 80x64, the frames are 40x32" in r.stdout
    assert_one_line_error(r, 3, "zz_result.png: frame size 80x64 differs from the other frames' 40x32")
    # other commands name the odd frame too, not the first frame
    assert_one_line_error(run("predict", folder, "-o", tmp_path / "d.png"), 3, "zz_result.png")


def test_help_lists_the_choices_and_completion_is_offered():
    predict = " ".join(run("predict", "--help").stdout.split())
    for text in ("auto|on|off", "classic|model", "laplacian|tenengrad|variance", "turbo|viridis", "fp32|bf16|fp16",
                 "--ply", "--range", "--align-threshold"):
        assert text in predict, text
    assert "auto|on|off" in run("fuse", "--help").stdout
    assert "translation|similarity" in " ".join(run("align", "--help").stdout.split())
    root = run("--help").stdout
    assert "--install-completion" in root and "--show-completion" in root


def test_train_help_shows_every_default():
    """The defaults --help shows are TrainConfig's own (read from the dataclass, not a copy)."""
    from focalcli.train.config import TrainConfig

    cfg = TrainConfig()
    text = " ".join(run("train", "--help").stdout.split())
    for key in ("data", "model", "steps", "batch_size", "crop", "lr", "loss", "val_every", "workers", "render", "seed",
                "device"):
        value = getattr(cfg, key)
        shown = ", ".join(value) if isinstance(value, tuple) else str(value)
        assert f"[default: ({shown})]" in text, key
    assert "diopter-l1|mse-laplacian|silog-grad" in text and "tensorboard|wandb" in text


def test_choices_match_the_library():
    from focalcli.align.register import MODELS
    from focalcli.cli import choices
    from focalcli.focus.measures import MEASURES
    from focalcli.io.depth import COLORMAPS, DEPTH_SUFFIXES
    from focalcli.predict import ALIGN_MODES, METHODS
    from focalcli.runtime import PRECISIONS
    from focalcli.train.config import LOSS_NAMES
    from focalcli.train.loggers import BACKENDS
    from focalcli.train.losses import LOSSES

    def values(enum):
        return [m.value for m in enum]

    assert values(choices.Method) == list(METHODS)
    assert values(choices.Measure) == list(MEASURES)
    assert values(choices.AlignMode) == list(ALIGN_MODES)
    assert values(choices.Precision) == list(PRECISIONS)
    assert values(choices.ColorMap) == list(COLORMAPS)
    assert values(choices.MotionModel) == list(MODELS)
    assert values(choices.Loss) == list(LOSSES) == list(LOSS_NAMES)
    assert values(choices.LogBackend) == list(BACKENDS)
    assert {f".{v}" for v in values(choices.DepthFormat)} == set(DEPTH_SUFFIXES)


def test_align_progress_names_its_passes(tmp_path):
    from focalcli.align import align_folder
    from tests.synthetic_align import misaligned_stack

    frames, _, _ = misaligned_stack(n=4, h=120, w=160, seed=3)
    folder = write_frames(tmp_path / "raw", frames)
    events = []
    align_folder(folder, tmp_path / "out", on_pass=lambda name: events.append(name),
                 progress=lambda done, total: events.append((done, total)))
    assert events[0] == "registering" and "warping" in events
    i = events.index("warping")
    assert all(total == 4 for _, total in events[1:i]) and all(total == 4 for _, total in events[i + 1:])
    assert events[-1] == (4, 4)
