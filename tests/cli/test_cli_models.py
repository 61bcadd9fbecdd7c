"""``focal models``: the table and the --json contract (name, params int, focus_distance_aware bool)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from focalcli.cli.app import app


def test_models_json_contract():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and rows
    for row in rows:
        assert isinstance(row["name"], str)
        assert isinstance(row["params"], int) and not isinstance(row["params"], bool)
        assert isinstance(row["focus_distance_aware"], bool)
        assert isinstance(row["input_size"], int) and isinstance(row["weights_shipped"], bool)
    base = next(r for r in rows if r["name"] == "focdepthformer-base")
    assert abs(base["params"] - 74.7e6) < 7.47e6 and base["focus_distance_aware"] is False


def test_models_table():
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    assert "focdepthformer-base" in result.stdout and "(default)" in result.stdout


def test_models_rejects_unknown_option():
    result = CliRunner().invoke(app, ["models", "--bogus"])
    assert result.exit_code == 2
