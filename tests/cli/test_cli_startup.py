"""The classic commands start without importing torch (it costs over a second at every start)."""

import json
import subprocess
import sys

_SCRIPT = """
import json, sys
import focalcli
from focalcli.cli.app import app
assert "torch" not in sys.modules, "importing focalcli.cli.app loaded torch"
heavy = json.loads(sys.argv[2]) if len(sys.argv) > 2 else ["torch"]
for args in json.loads(sys.argv[1]):
    try:
        app(args)
    except SystemExit as e:
        assert e.code in (0, None), (args, e.code)
    for module in heavy:
        assert module not in sys.modules, f"focal {' '.join(args)} loaded {module}"
print("no torch")
"""


def test_classic_commands_do_not_import_torch(plane_stack, tmp_path):
    from tests.conftest import write_frames
    from tests.synthetic_align import breathing_stack

    folder, _ = plane_stack
    frames, _, focus = breathing_stack(step=0.006)
    raw = write_frames(tmp_path / "raw", frames, focus=focus)  # --align auto aligns it: still no torch
    commands = [
        ["--help"],
        ["predict", "--help"],
        ["train", "--help"],
        ["predict", str(raw), "-o", str(tmp_path / "raw.npy"), "--aif", str(tmp_path / "raw.png"), "--preview"],
        ["fuse", str(raw), "-o", str(tmp_path / "raw_fused.png")],
        ["info", str(folder)],
        ["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--method", "classic", "--aif",
         str(tmp_path / "aif.png"), "--confidence", str(tmp_path / "c.npy"), "--preview"],
        ["fuse", str(folder), "-o", str(tmp_path / "fused.png")],
        ["align", str(folder), "-o", str(tmp_path / "aligned")],
    ]
    r = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no torch" in r.stdout
    assert (tmp_path / "d.npy").is_file() and (tmp_path / "aligned" / "stack.json").is_file()
    assert json.loads((tmp_path / "raw.json").read_text())["align"]["applied"]


def test_classic_prediction_does_not_import_numpy_ma_or_rich(plane_stack, tmp_path):
    """``np.median`` and ``np.percentile`` import ``numpy.ma`` on their first call (10-20 ms of every start): the
    classic path uses partial sorts instead. Off a terminal the messages are plain lines, without rich (~30 ms)."""
    folder, _ = plane_stack
    commands = [["predict", str(folder), "-o", str(tmp_path / "d.png"), "--method", "classic", "--preview"],
                ["predict", str(tmp_path / "missing"), "-o", str(tmp_path / "m.png")]]  # an error line too
    script = _SCRIPT.replace("assert e.code in (0, None), (args, e.code)", "pass")
    r = subprocess.run([sys.executable, "-c", script, json.dumps(commands),
                        json.dumps(["torch", "numpy.ma", "rich"])], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "d.png").is_file()
    lines = r.stderr.splitlines()
    assert lines[0] == f"wrote {tmp_path / 'd.png'}, {tmp_path / 'd.json'}, {tmp_path / 'd_preview.png'}"
    assert lines[-1] == f"error: {tmp_path / 'missing'}: no such folder", lines


def test_the_focus_volume_model_predicts_without_torch(plane_stack, tmp_path):
    """The default model's numpy twin runs on a CPU without torch (which alone takes longer to import than the
    whole prediction)."""
    import torch

    from focalcli.models import FocusVolumeConfig, build_model
    from focalcli.weights import export_model

    torch.manual_seed(0)
    weights = export_model(build_model(FocusVolumeConfig(bands=2, widths=(4, 6))), tmp_path / "fv.safetensors")
    folder, _ = plane_stack
    commands = [["predict", str(folder), "-o", str(tmp_path / "d.npy"), "--method", "model", "--weights",
                 str(weights), "--confidence", str(tmp_path / "c.npy"), "--device", "auto"]]
    r = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no torch" in r.stdout and (tmp_path / "d.npy").is_file() and (tmp_path / "c.npy").is_file()


def test_lazy_package_exports():
    import focalcli
    import focalcli.io.stack

    # the lazy name is the one its documented module exports (io.stack re-exports it from io.stack_folder)
    assert "depth_from_focus" in dir(focalcli) and focalcli.read_stack is focalcli.io.stack.read_stack
    try:
        focalcli.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("unknown names must raise AttributeError")
