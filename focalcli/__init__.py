"""focal: depth maps and all-in-focus images from focal stacks.

Public entry points (each is what one ``focal`` command calls)::

    from focalcli import read_stack, depth_from_focus, all_in_focus
"""

from focalcli.errors import ConfigError, FocalError, InputError, ModelFileError, OutputError, ShapeError
from focalcli.focus.classic import all_in_focus, depth_from_focus
from focalcli.focus.depth import DepthResult
from focalcli.io.stack import Camera, FocalStack, StackFolder, read_stack, scan_stack

__version__ = "0.1.0"

__all__ = [
    "Camera",
    "ConfigError",
    "DepthResult",
    "FocalError",
    "FocalStack",
    "InputError",
    "ModelFileError",
    "OutputError",
    "ShapeError",
    "StackFolder",
    "__version__",
    "all_in_focus",
    "depth_from_focus",
    "read_stack",
    "scan_stack",
]
