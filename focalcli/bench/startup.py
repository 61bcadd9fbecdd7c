"""``python -m focalcli.bench startup``: end-to-end seconds of focal commands, process start included.

What a user waits for when a script calls ``focal`` once per stack: Python's start, the imports, reading the frames,
the work and writing the outputs. Each command runs as a fresh process (``python -m focalcli ...``, outputs to a
temporary folder with ``--overwrite``, stdout and stderr not a terminal) after ``--warmup`` unmeasured runs; the
runs of all commands are interleaved, round by round, so that a machine whose speed drifts (a shared virtual
machine varies by 20-30 % within an hour) slows every command alike. Reported per command: the median and the
fastest wall time and the mean CPU time (user + system) of the process.

``--against DIR`` runs every command from another checkout too (``PYTHONPATH=DIR``), interleaved with this one, to
compare two versions on the same machine at the same time.

The stack is ``--stack`` or, by default, a 10-frame 640x480 8-bit PNG stack with focus distances built from a
synthetic texture with sensor-like noise (PNG decoding time depends on how well the frames compress: noise-free
frames decode faster than a camera's).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

__all__ = ["COMMANDS", "make_stack", "time_commands"]

# name -> arguments after ``python -m focalcli`` ({stack} and {out} are filled in); "python" ones run Python alone
COMMANDS: dict[str, list[str]] = {
    "python -c pass": ["python", "-c", "pass"],
    "import numpy cv2 typer": ["python", "-c", "import numpy, cv2, typer"],
    "focal --help": ["--help"],
    "predict classic": ["predict", "{stack}", "-o", "{out}/d.npy", "--overwrite"],
    "predict classic --align off": ["predict", "{stack}", "-o", "{out}/d.npy", "--align", "off", "--overwrite"],
    "predict model": ["predict", "{stack}", "-o", "{out}/d.npy", "--method", "model", "--overwrite"],
    "align": ["align", "{stack}", "-o", "{out}/aligned", "--overwrite"],
    "fuse": ["fuse", "{stack}", "-o", "{out}/aif.png", "--overwrite"],
}


def make_stack(folder: Path, frames: int = 10, size: tuple[int, int] = (640, 480)) -> Path:
    """A ``frames``-frame 8-bit PNG stack of ``size`` (W, H) in ``folder``: a random texture blurred more the
    further a frame is from the middle one, with noise of 1.5 gray levels, focus distances 0.5-2 m (even in
    diopters), a 50 mm F/2 lens."""
    import cv2
    import numpy as np

    from focalcli.io.stack import Camera, write_stack_json

    rng = np.random.default_rng(0)
    w, h = size
    texture = cv2.GaussianBlur(rng.random((h, w, 3), dtype=np.float32), (0, 0), 1.2)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    folder.mkdir(parents=True)
    names = []
    for i in range(frames):
        sigma = 0.3 + 1.5 * abs(i - (frames - 1) / 2)
        frame = cv2.GaussianBlur(texture, (0, 0), sigma) * 255 + rng.normal(0, 1.5, (h, w, 3))
        names.append(f"frame_{i:02d}.png")
        cv2.imwrite(str(folder / names[-1]), np.clip(frame + 0.5, 0, 255).astype(np.uint8))
    distances = [float(d) for d in 1 / np.linspace(2.0, 0.5, frames)]
    camera = Camera(focal_length_mm=50.0, f_number=2.0, pixel_pitch_um=6.0 * 6000 / w)  # a 24 MP sensor, resized
    write_stack_json(folder, names, distances, camera)
    return folder


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and exit code of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    code = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), code


def time_commands(commands: dict[str, list[str]], checkouts: dict[str, Path], runs: int, warmup: int
                  ) -> list[dict]:
    """Run every command from every checkout ``warmup`` times, then ``runs`` rounds of one run each, interleaved.

    Returns:
        One row per (checkout, command): ``checkout``, ``command``, ``median_s``, ``min_s``, ``cpu_s`` (mean),
        ``runs``.

    Raises:
        RuntimeError: a command exits with an error (its command line is in the message).
    """
    jobs = []
    for label, root in checkouts.items():
        # ``python -m`` puts the working folder first on sys.path: each checkout runs from its own root
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        for name, args in commands.items():
            argv = [sys.executable, *args[1:]] if args[0] == "python" else [sys.executable, "-m", "focalcli", *args]
            jobs.append((label, name, argv, env, root))
    for _ in range(warmup):
        for _, _, argv, env, root in jobs:
            _run(argv, env, root)
    times: dict[int, list[tuple[float, float]]] = {k: [] for k in range(len(jobs))}
    for _ in range(runs):
        for k, (_, _, argv, env, root) in enumerate(jobs):
            wall, cpu, code = _run(argv, env, root)
            if code != 0:
                raise RuntimeError(f"exit code {code}: {' '.join(argv)}")
            times[k].append((wall, cpu))
    return [{"checkout": label, "command": name, "median_s": round(statistics.median(w for w, _ in times[k]), 4),
             "min_s": round(min(w for w, _ in times[k]), 4),
             "cpu_s": round(statistics.fmean(c for _, c in times[k]), 4), "runs": runs}
            for k, (label, name, _, _, _) in enumerate(jobs)]


def bench_startup(
    stack: Path | None = typer.Option(None, "--stack", help="Stack folder (default: a 10-frame 640x480 PNG stack "
                                      "built for the run)."),
    runs: int = typer.Option(15, "--runs", min=1, help="Measured runs per command."),
    warmup: int = typer.Option(3, "--warmup", min=0, help="Unmeasured runs per command first."),
    commands: str = typer.Option(",".join(COMMANDS), "--commands", help="Comma-separated, of: "
                                 + ", ".join(COMMANDS) + "."),
    against: Path | None = typer.Option(None, "--against", help="Another checkout (its root folder) to time "
                                        "too, interleaved with this one."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the rows here."),
) -> None:
    """End-to-end seconds of focal commands, process start included (median, fastest, CPU)."""
    from rich.console import Console
    from rich.table import Table

    import focalcli

    chosen = [c.strip() for c in commands.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in COMMANDS]
    if unknown:
        raise typer.BadParameter(f"unknown command {unknown[0]!r}; use some of: {', '.join(COMMANDS)}")
    checkouts = {"this": Path(focalcli.__file__).resolve().parents[1]}
    if against is not None:
        if not (against / "focalcli" / "__init__.py").is_file():
            raise typer.BadParameter(f"{against}: no focalcli package there")
        checkouts["against"] = against.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        folder = stack.resolve() if stack else make_stack(Path(tmp) / "stack")
        fill = {"stack": str(folder), "out": tmp}
        table_commands = {c: [a.format(**fill) for a in COMMANDS[c]] for c in chosen}
        rows = time_commands(table_commands, checkouts, runs, warmup)
    table = Table(title=f"end to end, process start included ({runs} runs each after {warmup} warm-up, interleaved)")
    for col in ("checkout", "command", "median s", "fastest s", "CPU s"):
        table.add_column(col, justify="left" if col in ("checkout", "command") else "right")
    for r in rows:
        table.add_row(r["checkout"], r["command"], f"{r['median_s']:.3f}", f"{r['min_s']:.3f}", f"{r['cpu_s']:.2f}")
    console = Console()
    console.print(table)
    console.print(f"stack: {folder}; {os.cpu_count()} cores; "
                  + ", ".join(f"{k} = {v}" for k, v in checkouts.items()))
    if json_out is not None:
        json_out.write_text(json.dumps({"stack": str(folder), "checkouts": {k: str(v) for k, v in checkouts.items()},
                                        "rows": rows}, indent=2) + "\n", encoding="utf-8")


def register(app: typer.Typer) -> None:
    app.command("startup")(bench_startup)
