"""Invalid stack folders, each with a fragment of the error it must give (shared by the io and CLI tests)."""

import json

import numpy as np

from focalcli.io.images import write_image
from tests.conftest import write_frames


def _frames(n=3, h=8, w=10):
    return np.random.default_rng(0).random((n, h, w, 3)).astype(np.float32)


def _bad_stack(tmp_path, kind):
    folder = tmp_path / "bad"
    if kind == "missing":
        return tmp_path / "nope", "no such folder"
    folder.mkdir()
    if kind == "empty":
        return folder, "no images"
    if kind == "one_frame":
        write_frames(folder, _frames(1))
        return folder, "only one frame"
    write_frames(folder, _frames(3))
    if kind == "unreadable":
        (folder / "frame_01.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        return folder, "frame_01.png"
    if kind == "non_image":
        (folder / "notes.docx").write_bytes(b"x")
        return folder, "not an image"
    if kind == "sizes":
        write_image(folder / "frame_02.png", _frames(1, 9, 10)[0])
        return folder, "differs"
    if kind == "json_syntax":
        (folder / "stack.json").write_text("{not json")
        return folder, "not valid JSON"
    if kind == "json_missing_file":
        (folder / "stack.json").write_text(json.dumps({"frames": ["frame_00.png", "ghost.png"]}))
        return folder, "ghost.png"
    if kind == "json_count":
        (folder / "stack.json").write_text(json.dumps({"focus_distances_m": [1.0, 2.0]}))
        return folder, "2 focus distances for 3 frames"
    if kind == "json_nonpositive":
        (folder / "stack.json").write_text(json.dumps({"focus_distances_m": [1.0, 0.0, 2.0]}))
        return folder, "positive"
    if kind == "json_duplicate":
        (folder / "stack.json").write_text(json.dumps({"focus_distances_m": [1.0, 2.0, 1.0]}))
        return folder, "share a focus distance"
    raise AssertionError(kind)


BAD = ["missing", "empty", "one_frame", "unreadable", "non_image", "sizes", "json_syntax", "json_missing_file",
       "json_count", "json_nonpositive", "json_duplicate"]
