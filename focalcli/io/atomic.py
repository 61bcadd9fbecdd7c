"""Never clobber, never half-write: output checks, atomic writes, staged groups of outputs, interrupt deferral.

Every file focal writes goes through ``atomic_path`` (one file), ``atomic_paths`` (several files that appear
together) or ``atomic_folder`` (a whole folder). Each writes to temporary names beside (or staged near) the
destination and renames them into place only once everything is written; on any error, ``KeyboardInterrupt`` or
``SystemExit`` the temporaries are removed. An ``OSError`` while writing (permission, disk full, read-only file
system) becomes one ``OutputError`` naming the path. ``check_writable`` finds an unwritable folder before any work.

Missing folders on an output's path are created, but only when the output is committed: until then the temporary
files live in the nearest folder that exists, so an error or interrupt leaves no new folder behind. Every output
gets the permissions of any new file (``0666 & ~umask``), whatever the writer did to its temporary file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from focalcli.errors import OutputError

__all__ = ["PARTIAL_MARKER", "atomic_folder", "atomic_path", "atomic_paths", "check_output", "check_output_folder",
           "check_output_tree", "check_writable", "defer_interrupts", "existing_ancestor", "partial_folder",
           "remove_partial_folders", "write_error"]

PARTIAL_MARKER = ".focal-partial"  # a file inside every staging folder focal makes: only those are ever cleaned up


def write_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """One-line ``OutputError`` for an ``OSError`` raised while writing ``path``."""
    reason = error.strerror or str(error) or type(error).__name__
    return OutputError(f"{path}: cannot write ({reason})")


def check_writable(folder: str | os.PathLike) -> Path:
    """Check that files can be created in ``folder`` by creating and removing a temporary one.

    Raises:
        OutputError: the folder is missing, not a folder, or not writable (permission, read-only file system).
    """
    p = Path(folder)
    if not p.exists():
        raise OutputError(f"{p}: output folder does not exist")
    if not p.is_dir():
        raise OutputError(f"{p}: is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".focal-write-test.", dir=p)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise write_error(p, e) from None
    return p


def existing_ancestor(path: str | os.PathLike) -> Path:
    """The nearest folder above ``path`` that exists (``path``'s own parent when it exists).

    Raises:
        OutputError: a file stands where a folder of the path should be.
    """
    p = Path(path).absolute()
    for parent in p.parents:
        if parent.is_dir():
            return parent
        if parent.exists():
            raise OutputError(f"{path}: {parent} is a file, not a folder")
    raise OutputError(f"{path}: no existing folder on this path")  # unreachable: "/" exists


def check_output(path: str | os.PathLike, *, overwrite: bool, suffixes: Sequence[str] | None = None,
                 create_folders: bool = True) -> Path:
    """Validate an output file path before any work is done.

    Args:
        path: where the output will go.
        overwrite: whether an existing file may be replaced.
        suffixes: allowed lower-case extensions (``[".png", ".npy"]``); None allows any.
        create_folders: missing folders on the path are fine (the writers create them when they commit); else the
            output's folder must exist.

    Returns:
        The path as a ``Path``.

    Raises:
        OutputError: unknown extension, missing (without ``create_folders``) or unwritable folder, existing file
            without ``overwrite``, or a folder (a file) standing where the file (a folder) should go.
    """
    p = Path(path)
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise OutputError(f"{p}: unknown output extension {p.suffix or '(none)'!r}; use one of {', '.join(suffixes)}")
    if not p.parent.is_dir() and not create_folders:
        raise OutputError(f"{p}: output folder {p.parent} does not exist")
    if p.is_dir():
        raise OutputError(f"{p}: is a folder, expected a file name")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: exists already (use --overwrite to replace it)")
    check_writable(existing_ancestor(p))
    return p


@functools.cache
def _umask() -> int:
    # Reading the umask means setting it; do it once, not on every write (other threads may be creating files).
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_file(p: Path, folder: Path | None = None) -> Path:
    """An empty temporary file for ``p`` (same extension) in ``folder`` (default: beside ``p``, or in the nearest
    existing folder above it when its folder does not exist yet)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=folder or existing_ancestor(p))
        os.close(fd)
        _public(tmp)
    except OSError as e:
        raise write_error(p, e) from None
    return Path(tmp)


def _public(path: str | os.PathLike) -> None:
    """Give a finished temporary file the permissions of any new file: ``0666 & ~umask``.

    ``mkstemp`` makes files private (0600), and some writers replace the temporary file with their own (safetensors
    writes a new 0600 file), so this runs again just before the rename.
    """
    os.chmod(path, 0o666 & ~_umask())


def _commit(tmp: Path, p: Path) -> None:
    """Move a finished temporary file onto ``p``, creating missing folders on the way."""
    _public(tmp)
    p.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, p)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same extension); on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was; an ``OSError`` raised while
    writing becomes an ``OutputError`` naming ``path``.
    """
    p = Path(path)
    tmp_path = _temp_file(p)
    try:
        yield tmp_path
        _commit(tmp_path, p)
    except OSError as e:
        raise write_error(p, e) from e
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike], *, stage: str | os.PathLike | None = None
                 ) -> Iterator[list[Path]]:
    """Yield one temporary path per output; when the block succeeds, rename them all into place together.

    The renames happen with SIGINT and SIGTERM deferred (``defer_interrupts``), so a Ctrl-C never leaves some of
    the outputs without the others. On any exception every temporary file is removed and no output is touched.

    Args:
        paths: the destinations.
        stage: a folder for the temporary files, on the destinations' file system (the destinations' folders are
            then created at the commit when missing); default: beside each destination.

    Raises:
        OutputError: an ``OSError`` while writing or renaming.
    """
    targets = [Path(p) for p in paths]
    tmps: list[Path] = []
    try:
        for p in targets:
            tmps.append(_temp_file(p, Path(stage) if stage is not None else None))
        try:
            yield tmps
        except OSError as e:
            raise write_error(_untemp(str(e.filename or targets[0].parent), tmps, targets), e) from e
        except OutputError as e:  # from a writer's own atomic_path on one of our temporaries: name the output
            raise OutputError(_untemp(str(e), tmps, targets)) from e
        with defer_interrupts():
            for tmp, p in zip(tmps, targets, strict=True):
                try:
                    _commit(tmp, p)
                except OSError as e:
                    raise write_error(p, e) from e
    finally:
        for tmp in tmps:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _untemp(text: str, tmps: Sequence[Path], targets: Sequence[Path]) -> str:
    """``text`` with temporary file names (and temporaries of those) replaced by the outputs they stand for."""
    for tmp, p in zip(tmps, targets, strict=False):
        nested = re.escape(str(tmp.parent / f".{tmp.stem}.")) + r"[^/\s]*" + re.escape(tmp.suffix)
        text = re.sub(nested, lambda _m, p=p: str(p), text).replace(str(tmp), str(p))
    return text


def check_output_tree(path: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Validate a folder that outputs are written into one by one (a batch's output tree, a ``focal synth`` set, a
    training run) before any work is done: it may exist already, or be made later with its missing parents.

    Args:
        path: the folder.
        inputs: input folders it must not be (it may lie inside one: the batch's own output is skipped when read).

    Returns:
        The path as a ``Path``.

    Raises:
        OutputError: a file stands where the folder (or a folder above it) should be, the folder is an input, or the
            nearest existing folder is not writable.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{p}: exists and is not a folder")
    if any(Path(q).resolve() == p.resolve() for q in inputs):
        raise OutputError(f"{p}: is the input folder; choose another output folder")
    check_writable(p if p.is_dir() else existing_ancestor(p))
    return p


def check_output_folder(path: str | os.PathLike, *, overwrite: bool,
                        inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Validate an output folder path before any work is done.

    Args:
        path: the folder that will be written (as a whole, see ``atomic_folder``).
        overwrite: whether an existing folder may be replaced.
        inputs: input folders that the output must neither be nor contain (replacing it would delete them).

    Returns:
        The path as a ``Path``.

    Missing folders above ``path`` are fine: ``atomic_folder`` creates them when it commits.

    Raises:
        OutputError: unwritable parent folder, a file standing where the folder should go, an existing
            folder without ``overwrite``, or an output that is or contains an input.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{p}: exists and is not a folder")
    resolved = p.resolve()
    for q in inputs:
        q = Path(q).resolve()
        if q == resolved or resolved in q.parents:
            raise OutputError(f"{p}: the output folder would replace the input {q}; choose another output folder")
    if p.exists() and not overwrite:
        raise OutputError(f"{p}: exists already (use --overwrite to replace it)")
    check_writable(existing_ancestor(p))
    return p


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` as a whole.

    On any exception the temporary folder is removed and ``path`` is left as it was. An existing ``path`` is moved
    aside before the rename and deleted after it, so readers never see a half-written folder. An ``OSError`` while
    writing becomes an ``OutputError``.
    """
    p = Path(path)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=existing_ancestor(p)))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the result should look like any new folder
    except OSError as e:
        raise write_error(p, e) from None
    try:
        yield tmp
        with defer_interrupts():
            p.parent.mkdir(parents=True, exist_ok=True)
            if p.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{p.name}.old.", dir=p.parent))
                os.replace(p, old / p.name)
                os.replace(tmp, p)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, p)
    except OSError as e:
        raise write_error(p, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def partial_folder(parent: str | os.PathLike, name: str) -> Iterator[Path]:
    """A staging folder ``PARENT/.NAME.<random suffix>.partial`` marked as focal's; removed when the block exits.

    Whatever the block does not move out of it is deleted on success, error and interrupt alike. A folder left by a
    killed process is recognised by its marker and removed by ``remove_partial_folders`` on the next run.
    """
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=parent))
        os.chmod(stage, 0o777 & ~_umask())
        (stage / PARTIAL_MARKER).touch()
    except OSError as e:
        raise write_error(Path(parent) / name, e) from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def remove_partial_folders(parent: str | os.PathLike, name: str) -> list[Path]:
    """Remove the staging folders of ``name`` that an interrupted focal run left in ``parent`` (see
    ``partial_folder``); folders without focal's marker are never touched. Returns the removed folders."""
    removed = []
    for p in Path(parent).glob(f".{name}.*.partial"):
        if p.is_dir() and (p / PARTIAL_MARKER).is_file():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def defer_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (e.g. a group of renames), then deliver them.

    Outside the main thread (where Python cannot set handlers) the block simply runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:  # None: installed outside Python; leave it alone
            old[sig] = handler
            signal.signal(sig, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if received:
            signal.raise_signal(received[0])
