"""The fixed sets of values that options take, as Enums: ``--help`` lists them and shell completion offers them.

They are spelled out here rather than imported from the library so that ``focal --help`` and completion do not
import OpenCV or torch; ``tests/cli/test_cli_choices.py`` checks that each matches the library's own tuple.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["AlignMode", "ColorMap", "DepthFormat", "Loss", "LogBackend", "Measure", "Method", "MotionModel",
           "Precision", "Uncovered"]


class Method(str, Enum):
    """``focalcli.predict.METHODS``."""

    classic = "classic"
    model = "model"


class Measure(str, Enum):
    """``focalcli.focus.measures.MEASURES``."""

    laplacian = "laplacian"
    tenengrad = "tenengrad"
    variance = "variance"


class AlignMode(str, Enum):
    """``focalcli.predict.ALIGN_MODES``."""

    auto = "auto"
    on = "on"
    off = "off"


class Uncovered(str, Enum):
    """``focalcli.predict.UNCOVERED_MODES``."""

    fill = "fill"
    invalid = "invalid"


class Precision(str, Enum):
    """``focalcli.runtime.PRECISIONS``."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class DepthFormat(str, Enum):
    """Depth file formats of a batch (``focalcli.io.depth.DEPTH_SUFFIXES``)."""

    png = "png"
    npy = "npy"
    tiff = "tiff"
    tif = "tif"


class ColorMap(str, Enum):
    """``focalcli.io.depth.COLORMAPS``."""

    turbo = "turbo"
    viridis = "viridis"
    magma = "magma"
    inferno = "inferno"
    plasma = "plasma"
    cividis = "cividis"
    gray = "gray"


class MotionModel(str, Enum):
    """``focalcli.align.register.MODELS``."""

    translation = "translation"
    similarity = "similarity"
    affine = "affine"
    homography = "homography"


class Loss(str, Enum):
    """``focalcli.train.losses.LOSSES``."""

    diopter_l1 = "diopter-l1"
    mse_laplacian = "mse-laplacian"
    silog_grad = "silog-grad"


class LogBackend(str, Enum):
    """Training loggers beside ``log.jsonl`` (``focalcli.train.loggers.BACKENDS``)."""

    tensorboard = "tensorboard"
    wandb = "wandb"
