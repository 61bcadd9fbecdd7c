"""The focal stack: one dataclass in memory, one folder layout on disk.

A stack folder holds images (png, jpg, tif; 8 or 16 bit; gray, RGB or RGBA; EXIF orientation honoured) and an
optional ``stack.json``::

    {"frames": ["a.png", "b.png"], "focus_distances_m": [0.5, 0.63],
     "camera": {"focal_length_mm": 50, "f_number": 2.0, "pixel_pitch_um": 5.6}}

Without ``stack.json`` the frames are the folder's images in natural sort order, and focus distances come from EXIF
``SubjectDistance`` when every frame has one. Frames are always ordered by increasing focus distance when distances
are known.

Code that reads a stack frame by frame takes a ``FrameSource``: a ``FocalStack`` (in memory), a ``StackFolder``
(decoded from disk when a frame is read) or an ``align.WarpedStack`` (warped when read) alike.

Three modules, re-exported here (every name keeps this import path): ``focalstack`` (the in-memory and folder
types), ``stack_folder`` (scan, read and write one folder) and ``stack_tree`` (find stack folders).
"""

from focalcli.io.focalstack import (
    STACK_JSON,
    Camera,
    FocalStack,
    FrameSource,
    KeptFrames,
    StackFolder,
    covered,
    keep_frames,
    natural_key,
)
from focalcli.io.stack_folder import as_stack_folder, read_stack, scan_stack, write_stack, write_stack_json
from focalcli.io.stack_tree import find_stack_tree, find_stacks, is_stack_folder

__all__ = [
    "STACK_JSON",
    "Camera",
    "FocalStack",
    "FrameSource",
    "KeptFrames",
    "StackFolder",
    "as_stack_folder",
    "covered",
    "find_stack_tree",
    "find_stacks",
    "is_stack_folder",
    "keep_frames",
    "natural_key",
    "read_stack",
    "scan_stack",
    "write_stack",
    "write_stack_json",
]

