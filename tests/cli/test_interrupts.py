"""Kill and Ctrl-C: real processes, real signals (Linux: processes are found through /proc).

- ``synth`` with two workers killed with SIGKILL leaves no process behind within 5 s;
- ``synth`` interrupted with SIGINT stops within seconds with exit 130 and no staging folders;
- a batch ``predict`` killed with SIGKILL and run again finishes every stack, with outputs identical to an
  uninterrupted run and no temporary files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from focalcli.cli.app import app
from tests import synthetic
from tests.conftest import write_frames

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
FOCAL = [sys.executable, "-m", "focalcli"]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            out[int(d.name)] = (int(ppid), state)
    return out


def _descendants(pid: int) -> set[int]:
    procs, found, todo = _processes(), set(), [pid]
    while todo:
        parent = todo.pop()
        kids = [p for p, (pp, _) in procs.items() if pp == parent]
        found.update(kids)
        todo.extend(kids)
    return found


def _alive(pids: set[int]) -> set[int]:
    procs = _processes()
    return {p for p in pids if p in procs and procs[p][1] not in ("Z", "X")}  # zombies are dead


def _wait_for(condition, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _start_synth(out: Path) -> subprocess.Popen:
    cmd = [*FOCAL, "synth", "--procedural", "400", "--procedural-size", "96x72", "--frames", "3", "--workers", "2",
           "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _busy_workers(proc: subprocess.Popen, out: Path) -> set[int]:
    """Wait until both workers run and one scene is done; return the process's descendants."""
    _wait_for(lambda: proc.poll() is not None or len(_descendants(proc.pid)) >= 2, 60, "two worker processes")
    _wait_for(lambda: proc.poll() is not None or any(out.glob("procedural__*/scene.json")), 60, "a rendered scene")
    assert proc.poll() is None, "synth finished before it could be interrupted"
    return _descendants(proc.pid)


def test_synth_workers_die_with_a_killed_parent(tmp_path):
    proc = _start_synth(tmp_path / "out")
    try:
        workers = _busy_workers(proc, tmp_path / "out")
        assert len(workers) >= 2
        proc.kill()  # SIGKILL: no handler runs in the parent
        proc.wait()
        _wait_for(lambda: not _alive(workers), 5, f"workers {sorted(_alive(workers))} to end")
    finally:
        for pid in _alive(_descendants(proc.pid)) if proc.poll() is None else ():
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()


def test_synth_ctrl_c_stops_at_once(tmp_path):
    out = tmp_path / "out"
    proc = _start_synth(out)
    try:
        workers = _busy_workers(proc, out)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        seconds = time.monotonic() - t0
        stderr = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.wait()
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    assert seconds < 5, f"Ctrl-C took {seconds:.1f} s"  # ~0.5 s on an idle machine; the queue is not drained
    _wait_for(lambda: not _alive(workers), 5, "workers to end")
    assert not list(out.glob(".*.partial")), "staging folders left behind"
    assert not (out / "manifest.json").exists()


def _batch(root: Path, count: int) -> Path:
    frames, _, focus = synthetic.step_planes(h=120, w=160, n=6)
    rng = np.random.default_rng(0)
    for i in range(count):
        shifted = np.roll(frames, int(rng.integers(0, 160)), axis=2)  # each stack its own picture
        write_frames(root / f"s{i:02d}", shifted, focus=focus if i % 2 else None)
    return root


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_killed_batch_predict_is_finished_by_a_rerun(tmp_path):
    root = _batch(tmp_path / "stacks", 24)
    args = ["predict", str(root), "--aif", "aif.png", "--confidence", "c.png", "--preview"]
    ref = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "ref")])
    assert ref.exit_code == 0, ref.output
    out = tmp_path / "out"
    proc = subprocess.Popen([*FOCAL, *args, "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        _wait_for(lambda: proc.poll() is not None or any(out.glob("*/depth.json")), 60, "a finished stack")
        assert proc.poll() is None, "the batch finished before it could be killed"
        proc.kill()
        proc.wait()
    finally:
        proc.kill()
        proc.wait()
    done = _tree(out)
    finished = {k.split("/")[0] for k in done if not k.startswith(".")}
    assert 0 < len(finished) < 24, "the kill should land in the middle of the batch"
    for name in finished:  # every stack folder that exists is complete
        assert {k for k in done if k.startswith(name + "/")} == {f"{name}/{f}" for f in (
            "depth.png", "depth.json", "depth_preview.png", "aif.png", "c.png")}
    again = CliRunner().invoke(app, [*args, "-o", str(out)])  # no --overwrite: finishes what is missing
    assert again.exit_code == 0, again.output
    assert again.stderr.count("skipped") == len(finished)
    assert _tree(out) == _tree(tmp_path / "ref")  # identical bytes, no staging folders or temporary files
