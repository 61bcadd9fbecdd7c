"""Parameter counts: the paper's preset matches its reported 74.7 M within 10 %, part by part."""

from __future__ import annotations

import pytest

from focalcli.models import get_config, preset_names
from focalcli.models.inference import parameters_by_part

# Kang et al. (arXiv 2310.11178), parameter table, millions.
PAPER = {"stem": 0.49, "encoder": 42.1, "fusion": 15.2, "decoder": 16.9, "total": 74.7}


def test_base_matches_the_paper_within_ten_percent():
    parts = parameters_by_part(get_config("focdepthformer-base"))  # counted on the meta device
    print("\npart       ours (M)  paper (M)")
    for name, paper in PAPER.items():
        print(f"{name:<9}{parts[name] / 1e6:>9.2f}{paper:>11.2f}")
    for name, paper in PAPER.items():
        assert abs(parts[name] / 1e6 - paper) <= 0.1 * paper, name


@pytest.mark.parametrize("name", preset_names())
def test_parts_add_up(name):
    parts = parameters_by_part(get_config(name))
    expected = {"stem", "encoder", "fusion", "decoder"} if name.startswith("focdepthformer") else \
        {"measures", "volume", "head"}
    assert set(parts) == expected | {"total"}
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")
    assert min(parts.values()) > 0


def test_cpu_presets_are_much_smaller():
    base = parameters_by_part(get_config("focdepthformer-base"))["total"]
    tiny = parameters_by_part(get_config("focdepthformer-tiny"))["total"]
    assert tiny < base / 10
