"""The strict config builder (types and optional fields) and the shape checks' messages."""

from dataclasses import dataclass

import pytest
import torch

from focalcli.checks import check_finite, check_range, check_shape
from focalcli.config import build_dataclass
from focalcli.errors import ConfigError, InputError, ShapeError


@dataclass(frozen=True)
class _Cfg:
    count: int = 1
    scale: float = 1.0
    flag: bool = False
    size: tuple[int, int] | None = None
    widths: tuple[int, ...] = (1,)
    name: str = "x"


def test_coercion_follows_the_annotations():
    c = build_dataclass(_Cfg, {"scale": 2, "size": [3, 4], "widths": [5, 6, 7]}, {"count": 3})
    assert c == _Cfg(count=3, scale=2.0, size=(3, 4), widths=(5, 6, 7))
    assert isinstance(c.scale, float) and isinstance(c.size, tuple)
    assert build_dataclass(_Cfg, {"size": None}).size is None  # Optional accepts null
    assert build_dataclass(_Cfg, {"widths": []}).widths == ()  # tuple[int, ...]: any length
    assert build_dataclass(_Cfg, {"flag": True, "count": 0}) == _Cfg(flag=True, count=0)  # bool and int kept apart


@pytest.mark.parametrize("layer", [{"count": True}, {"count": 1.5}, {"flag": 1}, {"scale": "2"}, {"size": [1, "a"]},
                                   {"size": [1, 2, 3]}, {"size": [1]}, {"count": None}, {"widths": 3}, {"name": 5},
                                   {"colour": 1}])
def test_wrong_types_and_unknown_keys_are_config_errors(layer):
    with pytest.raises(ConfigError, match="where"):
        build_dataclass(_Cfg, layer, where="where")


def test_check_shape_names_expected_and_actual():
    assert check_shape(torch.zeros(2, 3, 3, 5, 6), "B N 3 H W") == {"B": 2, "N": 3, "H": 5, "W": 6}
    with pytest.raises(ShapeError, match=r"frames has the wrong rank.*B N 3 H W.*\(2, 3, 5, 6\)"):
        check_shape(torch.zeros(2, 3, 5, 6), "B N 3 H W", "frames")
    with pytest.raises(ShapeError, match="wrong shape"):
        check_shape(torch.zeros(2, 3, 4, 5, 6), "B N 3 H W", "frames")
    with pytest.raises(ShapeError, match="dimension N differs"):
        check_shape(torch.zeros(2, 3, 4), "B N N")


def test_value_checks():
    check_range(torch.tensor([0.5, 1.0]), 0.0, 1.0)
    with pytest.raises(InputError, match="below 0.6"):
        check_range(torch.tensor([0.5, 1.0]), 0.6, None, "focus")
    with pytest.raises(InputError, match="NaN or infinite"):
        check_finite(torch.tensor([1.0, float("inf")]))
