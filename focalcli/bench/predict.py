"""``python -m focalcli.bench predict``: seconds per stack of the classic path against the time to decode frames.

Builds 10-frame JPEG stacks at 640x480 and 1920x1080 from the bundled example (``examples/beetle``, resized) or,
without it, from a synthetic texture; then times, median of ``--repeat`` runs:
- decode: decoding every frame to 8-bit RGB (OpenCV, as focal reads it), nothing else;
- depth: ``focal predict --method classic`` without extra outputs (depth + sidecar written);
- depth+aif: the same with ``--aif`` and ``--confidence``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import typer

SIZES = {"640x480": (640, 480), "1920x1080": (1920, 1080)}


def _sources(n: int) -> list:
    import cv2
    import numpy as np

    example = Path("examples/beetle")
    files = sorted(example.glob("*.jpg")) if example.is_dir() else []
    if len(files) >= 2:
        idx = np.linspace(0, len(files) - 1, n).round().astype(int)
        return [cv2.imread(str(files[i])) for i in idx], "examples/beetle (resized)"
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.random((1080, 1920, 3), dtype=np.float32), (0, 0), 1.5)
    base = (255 * (base - base.min()) / (base.max() - base.min())).astype(np.uint8)
    return [cv2.GaussianBlur(base, (0, 0), 0.3 + abs(i - n / 2)) for i in range(n)], "synthetic texture"


def _make_stack(folder: Path, size: tuple[int, int], n: int) -> str:
    import cv2

    images, source = _sources(n)
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        cv2.imwrite(str(folder / f"f{i:02d}.jpg"), cv2.resize(img, size, interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return source


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_predict(
    frames: int = typer.Option(10, "--frames", help="Frames per stack."),
    repeat: int = typer.Option(5, "--repeat", help="Runs per figure (median reported)."),
    measure: str = typer.Option("laplacian", "--measure", help="Focus measure."),
) -> None:
    """Time the classic predict path against frame decoding for 640x480 and 1920x1080 stacks."""
    from rich.console import Console
    from rich.table import Table

    from focalcli.io.images import decode_image
    from focalcli.io.stack import scan_stack
    from focalcli.predict import PredictOutputs, predict_to_files

    table = Table(title=f"focal predict --method classic, {frames}-frame JPEG stacks (median of {repeat})")
    for col in ("size", "decode s", "depth s", "depth / decode", "depth+aif+conf s", "with aif / decode"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in SIZES.items():
            folder = Path(tmp) / label
            source = _make_stack(folder, size, frames)
            sf = scan_stack(folder)
            out = Path(tmp) / f"out-{label}"
            out.mkdir()
            decode = _median_time(lambda sf=sf: [decode_image(p) for p in sf.frame_paths], repeat)
            depth = _median_time(lambda sf=sf, out=out: predict_to_files(
                sf, PredictOutputs(depth=out / "d.npy"), overwrite=True, measure=measure), repeat)
            full = _median_time(lambda sf=sf, out=out: predict_to_files(
                sf, PredictOutputs(depth=out / "d.npy", aif=out / "a.png", confidence=out / "c.npy"),
                overwrite=True, measure=measure), repeat)
            table.add_row(label, f"{decode:.3f}", f"{depth:.3f}", f"{depth / decode:.2f}x", f"{full:.3f}",
                          f"{full / decode:.2f}x")
    Console().print(table)
    Console().print(f"frames from {source}; decode = JPEG decoding of all frames to 8-bit RGB (OpenCV), nothing else")


def register(app: typer.Typer) -> None:
    app.command("predict")(bench_predict)
