"""Atomic writes: single files, groups of outputs that appear together, staging folders, deferred interrupts."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from focalcli.errors import OutputError
from focalcli.io.atomic import (
    PARTIAL_MARKER,
    atomic_path,
    atomic_paths,
    check_output,
    check_writable,
    defer_interrupts,
    partial_folder,
    remove_partial_folders,
)


def _names(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_atomic_paths_commits_all_or_nothing(tmp_path):
    outs = [tmp_path / "d.png", tmp_path / "sub" / "a.jpg"]
    with atomic_paths(outs, stage=tmp_path) as tmps:  # staged: "sub" is created at the commit
        assert [t.suffix for t in tmps] == [".png", ".jpg"] and not any(p.exists() for p in outs)
        for t in tmps:
            t.write_text(t.suffix)
    assert [p.read_text() for p in outs] == [".png", ".jpg"] and _names(tmp_path) == ["a.jpg", "d.png", "sub"]
    for error in (ValueError, KeyboardInterrupt):
        with pytest.raises(error), atomic_paths([tmp_path / "x.png", tmp_path / "y.png"]) as tmps:
            tmps[0].write_text("half")
            raise error
        assert _names(tmp_path) == ["a.jpg", "d.png", "sub"]  # no output, no temporary file


def test_write_errors_become_one_output_error_naming_the_output(tmp_path, monkeypatch):
    def full(*_):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match=r"d\.png: cannot write \(No space left on device\)"), \
            atomic_paths([tmp_path / "d.png"]) as tmps, atomic_path(tmps[0]) as inner:
        full(inner)
    monkeypatch.setattr("focalcli.io.atomic.os.replace", full)
    with pytest.raises(OutputError, match="No space left"), atomic_path(tmp_path / "e.npy") as tmp:
        tmp.write_text("x")
    assert _names(tmp_path) == []


def test_check_writable(tmp_path):
    assert check_writable(tmp_path) == tmp_path and _names(tmp_path) == []
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        check_writable(tmp_path / "f")
    with pytest.raises(OutputError, match="does not exist"):
        check_writable(tmp_path / "nope")
    if os.geteuid() != 0:  # root writes anywhere; the CLI table covers it with an unprivileged uid
        (tmp_path / "ro").mkdir(mode=0o555)
        with pytest.raises(OutputError, match="cannot write"):
            check_writable(tmp_path / "ro")


def test_partial_folders_are_marked_and_only_marked_ones_are_removed(tmp_path):
    with partial_folder(tmp_path, "s1") as stage:
        assert (stage / PARTIAL_MARKER).is_file() and stage.name.startswith(".s1.") and stage.name.endswith(".partial")
    assert _names(tmp_path) == []  # removed on exit
    left = tmp_path / ".s1.abc.partial"
    left.mkdir()
    (left / PARTIAL_MARKER).touch()  # what a killed run leaves
    foreign = tmp_path / ".s1.mine.partial"
    foreign.mkdir()
    assert remove_partial_folders(tmp_path, "s1") == [left]
    assert foreign.is_dir() and not left.exists()


def test_defer_interrupts_delivers_ctrl_c_after_the_block():
    done = []
    with pytest.raises(KeyboardInterrupt), defer_interrupts():
        signal.raise_signal(signal.SIGINT)
        done.append("renames finished")
    assert done == ["renames finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_outputs_get_the_mode_of_a_new_file_even_when_the_writer_replaces_the_temporary(tmp_path):
    import tempfile

    def private_writer(tmp):  # as safetensors does: a new 0600 file written elsewhere, moved onto the temporary
        fd, other = tempfile.mkstemp(dir=tmp_path)
        os.write(fd, b"data")
        os.close(fd)
        os.replace(other, tmp)

    with atomic_path(tmp_path / "one.bin") as tmp:
        private_writer(tmp)
    with atomic_paths([tmp_path / "a.bin", tmp_path / "sub" / "b.bin"]) as tmps:
        for t in tmps:
            private_writer(t)
    for p in (tmp_path / "one.bin", tmp_path / "a.bin", tmp_path / "sub" / "b.bin"):
        assert (p.stat().st_mode & 0o777) == 0o666 & ~_umask(), p


def test_exported_model_file_is_not_private(exported_path):
    assert (exported_path.stat().st_mode & 0o777) == 0o666 & ~_umask()


@pytest.fixture
def exported_path(tmp_path):
    from focalcli.weights import export_model
    from tests.models_common import micro

    return export_model(micro(True), tmp_path / "m.safetensors")


def test_missing_folders_are_made_only_when_the_outputs_are_committed(tmp_path):
    target = tmp_path / "x" / "y" / "d.png"
    check_output(target, overwrite=False)  # fine: the folders will be made
    with pytest.raises(RuntimeError), atomic_paths([target]) as (tmp,):
        tmp.write_bytes(b"half")
        assert not (tmp_path / "x").exists()  # the temporary lives in the nearest existing folder
        raise RuntimeError("the work failed")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    (tmp_path / "f").write_text("a file")
    with pytest.raises(OutputError, match="is a file"):
        check_output(tmp_path / "f" / "d.png", overwrite=False)


@pytest.mark.parametrize("overwrite_with", ["atomic_path", "atomic_paths"])
def test_a_writer_that_raises_keeps_the_old_file(tmp_path, overwrite_with):
    old = tmp_path / "d.npy"
    old.write_text("old")
    with pytest.raises(RuntimeError, match="writer failed"):
        if overwrite_with == "atomic_path":
            with atomic_path(old) as tmp:
                tmp.write_text("half")
                raise RuntimeError("writer failed")
        else:
            with atomic_paths([old]) as (tmp,):
                tmp.write_text("half")
                raise RuntimeError("writer failed")
    assert old.read_text() == "old" and _names(tmp_path) == ["d.npy"]
