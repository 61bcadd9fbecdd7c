"""Never clobber, never half-write: output checks and atomic writes."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from focalcli.errors import OutputError

__all__ = ["atomic_folder", "atomic_path", "check_output", "check_output_folder"]


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


@functools.cache
def _umask() -> int:
    # Reading the umask means setting it; do it once, not on every write (other threads may be creating files).
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same extension); on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes it private; the result should look like any new file
    try:
        yield tmp_path
        os.replace(tmp_path, p)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def check_output_folder(path: str | os.PathLike, *, overwrite: bool,
                        inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Validate an output folder path before any work is done.

    Args:
        path: the folder that will be written (as a whole, see ``atomic_folder``).
        overwrite: whether an existing folder may be replaced.
        inputs: input folders that the output must neither be nor contain (replacing it would delete them).

    Returns:
        The path as a ``Path``.

    Raises:
        OutputError: missing parent folder, a file standing where the folder should go, an existing folder without
            ``overwrite``, or an output that is or contains an input.
    """
    p = Path(path)
    if not p.parent.is_dir():
        raise OutputError(f"{p}: its parent folder {p.parent} does not exist")
    if p.exists() and not p.is_dir():
        raise OutputError(f"{p}: exists and is not a folder")
    resolved = p.resolve()
    for q in inputs:
        q = Path(q).resolve()
        if q == resolved or resolved in q.parents:
            raise OutputError(f"{p}: the output folder would replace the input {q}; choose another output folder")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: exists already (use --overwrite to replace it)")
    return p


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    On any exception the temporary folder is removed and ``path`` is left as it was. An existing ``path`` is moved
    aside before the rename and deleted after it, so readers never see a half-written folder.
    """
    p = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=p.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the result should look like any new folder
    try:
        yield tmp
        if p.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{p.name}.old.", dir=p.parent))
            os.replace(p, old / p.name)
            os.replace(tmp, p)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
