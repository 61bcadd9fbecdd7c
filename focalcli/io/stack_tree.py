"""Finding stack folders: ``is_stack_folder``, ``find_stacks`` (one level) and ``find_stack_tree`` (recursive, with
the folders left out and why), for batch prediction and ``focal info``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from focalcli.io.focalstack import STACK_JSON, natural_key
from focalcli.io.images import (
    IMAGE_SUFFIXES,
)


def is_stack_folder(folder: Path) -> bool:
    """Whether ``folder`` directly holds frames (images or a ``stack.json``)."""
    return (folder / STACK_JSON).is_file() or any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if not p.name.startswith(".")
    )


def find_stacks(folder: Path) -> Sequence[Path]:
    """The stack folders directly inside ``folder``, in natural order (``find_stack_tree`` searches deeper)."""
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((p for p in subs if is_stack_folder(p)), key=lambda p: natural_key(p.name))


def find_stack_tree(root: str | os.PathLike, *, exclude: Sequence[str | os.PathLike] = ()
                    ) -> tuple[list[Path], list[tuple[str, str]]]:
    """Every stack folder under ``root``, searched recursively, and the folders left out with the reason.

    A folder that holds frames (or a ``stack.json``) is a stack and is not searched further (its sub-folders may
    hold its frames); a folder without frames is searched. Hidden folders (``.name``) and the folders in
    ``exclude`` (e.g. the batch's own output folder) are ignored, and a folder reached twice through symbolic links
    is visited once.

    Returns:
        ``(stacks, skipped)``: stack folders in natural order (depth first), and ``(folder relative to root, why)``
        for every folder that is neither a stack nor holds one.
    """
    root = Path(root)
    stacks: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[Path] = {Path(p).resolve() for p in exclude}

    def visit(folder: Path) -> bool:
        """Search ``folder``; whether it holds a stack somewhere below."""
        real = folder.resolve()
        if real in seen:
            return False
        seen.add(real)
        subs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: natural_key(p.name))
        found = False
        for sub in subs:
            rel = sub.relative_to(root).as_posix()
            if sub.resolve() in seen:
                continue
            try:
                if is_stack_folder(sub):
                    stacks.append(sub)
                    found = True
                    continue
                entries = [p for p in sub.iterdir() if not p.name.startswith(".")]
            except OSError as e:
                skipped.append((rel, f"cannot be read ({e.strerror or e})"))
                continue
            if any(p.is_dir() for p in entries):
                found = visit(sub) or found  # its own leaves are listed if it holds no stack
                continue
            files = [p.name for p in entries if p.is_file()]
            skipped.append((rel, f"no image files ({len(files)} other file(s), e.g. {files[0]})" if files
                            else "empty"))
        return found

    visit(root)
    return stacks, skipped
