"""The README's Python API example runs as written, and the packaging promises hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_api_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_api_example_runs(monkeypatch, tmp_path, capsys):
    import focalcli.learned
    from focalcli.weights import export_model
    from tests.models_common import micro

    # the example uses the shipped weights; a micro model stands in so that the test checks the API, not the model
    weights = export_model(micro(True), tmp_path / "micro.safetensors")
    monkeypatch.setattr(focalcli.learned, "default_weights", lambda: weights)
    monkeypatch.chdir(ROOT)
    exec(compile(_python_api_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "frame_index (500, 750) (500, 750, 3)"
    assert out[1].startswith("aligned: focus breathing moves")
    assert out[2].endswith("(500, 750)")


def test_distribution_is_focalcli_and_the_command_focal():
    from importlib.metadata import distribution

    dist = distribution("focalcli")
    assert [ep.value for ep in dist.entry_points if ep.name == "focal"] == ["focalcli.cli.app:main"]
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "focalcli"
    assert "tomli>=2.0; python_version < '3.11'" in project["dependencies"]
    assert project["requires-python"] == ">=3.10"


@pytest.mark.parametrize("path", ["README.md", "focalcli/io/rgbd.py", "focalcli/io/exr.py",
                                  "focalcli/data/ddff.py"])
def test_install_hints_name_focalcli(path):
    """`pip install focal[...]` would install an unrelated PyPI project."""
    text = (ROOT / path).read_text(encoding="utf-8")
    assert not re.search(r"pip install '?focal\[", text), path
