"""Never clobber, never half-write: output checks and atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from focalcli.errors import OutputError

__all__ = ["atomic_path", "check_output"]


def check_output(path: str | os.PathLike, *, overwrite: bool, suffixes: Sequence[str] | None = None) -> Path:
    """Validate an output file path before any work is done.

    Args:
        path: where the output will go.
        overwrite: whether an existing file may be replaced.
        suffixes: allowed lower-case extensions (``[".png", ".npy"]``); None allows any.

    Returns:
        The path as a ``Path``.

    Raises:
        OutputError: unknown extension, missing parent folder, existing file without ``overwrite``, or a folder
            standing where the file should go.
    """
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise OutputError(f"{p}: unknown output extension {p.suffix or '(none)'!r}; use one of {', '.join(suffixes)}")
    if not p.parent.is_dir():
        raise OutputError(f"{p}: output folder {p.parent} does not exist")
    if p.is_dir():
        raise OutputError(f"{p}: is a folder, expected a file name")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: exists already (use --overwrite to replace it)")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same extension); on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, p)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
