"""``python -m focalcli.bench fuse --valset OUT``: all-in-focus quality of each method on each set of a validation set.

The validation set (``python -m focalcli.bench valset``) keeps the sharp source of every stack (``aif.png``), so a
fused image can be compared with what a perfect fusion would give. Methods:

- ``focal``: what ``focal fuse`` writes (``focalcli.focus.classic.all_in_focus`` after the alignment check, as
  ``focalcli.predict.fuse_to_file`` runs it): a Laplacian-pyramid fusion.
- ``textbook``: every pixel from the frame of largest Laplacian energy (``bench.baselines.textbook_measure``: the
  textbook depth baseline's measure, 9x9 window), the hard selection of the literature; on the same frames.
- ``best-frame``: the single frame closest to the sharp source (a floor: what no fusion at all gives).

Scores (``focalcli.bench.fuse.image_scores``): PSNR in dB on 8-bit sRGB and SSIM of the gray images (Wang et al.
2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03), over the whole image. The frames carry sensor noise and the
source does not, so no method reaches the source; the ranking is what counts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import typer

__all__ = ["FUSERS", "image_scores", "score_fusion"]


def _focal(stack) -> np.ndarray:
    from focalcli.focus.classic import all_in_focus
    from focalcli.predict.run import align_for_prediction

    source, _ = align_for_prediction(stack, "auto")
    return all_in_focus(source)


def _frames(stack):
    """The frames ``focal fuse`` would fuse (aligned when the check says so), HxWx3 float32, one at a time."""
    from focalcli.io.images import to_float
    from focalcli.predict.run import align_for_prediction

    source, _ = align_for_prediction(stack, "auto")
    for i in range(len(source)):
        yield to_float(source.frame(i))


def _textbook(stack) -> np.ndarray:
    from focalcli.bench.baselines import textbook_measure

    out = best = None
    for frame in _frames(stack):
        m = textbook_measure(frame)
        if out is None:
            out, best = frame.copy(), m
            continue
        better = m > best
        out[better], best = frame[better], np.where(better, m, best)
    return out


def _best_frame(stack, truth: np.ndarray) -> np.ndarray:
    return max(_frames(stack), key=lambda f: image_scores(f, truth)[0])


# name -> fuser(stack[, truth]) -> HxWx3 float32 RGB in [0, 1]
FUSERS: dict[str, Callable] = {"focal": _focal, "textbook": _textbook, "best-frame": _best_frame}


def _ssim_gray(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    ssim = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
    return float(ssim.mean())


def image_scores(image: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """``(PSNR dB, SSIM)`` of an RGB image against the truth, both quantised to 8 bits first.

    Shape:
        ``(H, W, 3)`` float in [0, 1] each.
    """
    q = lambda x: np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.float64)  # noqa: E731
    a, b = q(image), q(truth)
    mse = float(np.mean((a - b) ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
    gray = lambda x: cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY).astype(np.float64)  # noqa: E731
    return psnr, _ssim_gray(gray(a), gray(b))


def score_fusion(valset: str | Path, methods: list[str], *,
                 progress: Callable[[str, str], None] | None = None) -> list[dict]:
    """Score ``methods`` (keys of ``FUSERS``) on every set of ``valset``.

    Returns:
        One row per (set, method): ``set``, ``method``, ``count``, mean ``psnr`` and ``ssim``, ``seconds`` per
        stack, and ``rows`` (per stack).

    Raises:
        InputError: ``valset`` holds no sets. ConfigError: an unknown method.
    """
    from focalcli.bench.depth import _sets
    from focalcli.errors import ConfigError
    from focalcli.io.images import read_image, to_float
    from focalcli.io.stack import scan_stack

    unknown = [m for m in methods if m not in FUSERS]
    if unknown:
        raise ConfigError(f"unknown method {unknown[0]!r}; use one of {', '.join(FUSERS)}")
    results = []
    for folder in _sets(Path(valset)):
        scenes = sorted(p for p in folder.iterdir() if (p / "stack").is_dir() and (p / "aif.png").is_file())
        for name in methods:
            if progress is not None:
                progress(folder.name, name)
            rows, seconds = [], []
            for scene in scenes:
                truth = to_float(read_image(scene / "aif.png")[0])
                stack = scan_stack(scene / "stack")
                t = time.perf_counter()
                image = FUSERS[name](stack, truth) if name == "best-frame" else FUSERS[name](stack)
                seconds.append(time.perf_counter() - t)
                psnr, ssim = image_scores(image, truth)
                rows.append({"name": scene.name, "psnr": psnr, "ssim": ssim})
            results.append({"set": folder.name, "method": name, "count": len(rows),
                            "psnr": float(np.mean([r["psnr"] for r in rows])) if rows else float("nan"),
                            "ssim": float(np.mean([r["ssim"] for r in rows])) if rows else float("nan"),
                            "seconds": float(np.mean(seconds)) if seconds else 0.0, "rows": rows})
    return results


def bench_fuse(
    valset: Path = typer.Option(..., "--valset", help="Folder made by `python -m focalcli.bench valset`."),
    methods: str = typer.Option("textbook,focal", "--methods", help=f"Comma-separated: {', '.join(FUSERS)}."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every figure (and per-stack rows) here."),
) -> None:
    """All-in-focus quality (PSNR, SSIM against the sharp source) of each method on each validation set."""
    from rich.console import Console
    from rich.table import Table

    from focalcli.bench.depth import _scored
    from focalcli.io.atomic import atomic_path

    err = Console(stderr=True)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    rows = _scored(score_fusion, valset, names, err)
    table = Table(title=f"all-in-focus on {valset} (against the sharp source; frames are noisy, it is not)")
    for col in ("set", "method", "stacks", "PSNR dB", "SSIM", "s/stack"):
        table.add_column(col, justify="left" if col in ("set", "method") else "right")
    for i, r in enumerate(rows):
        first = i == 0 or rows[i - 1]["set"] != r["set"]
        last = i == len(rows) - 1 or rows[i + 1]["set"] != r["set"]
        table.add_row(r["set"] if first else "", r["method"], str(r["count"]), f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
                      f"{r['seconds']:.3f}", end_section=last and i < len(rows) - 1)
    out = Console(highlight=False)
    if not out.is_terminal:
        out.width = 120
    out.print(table)
    if json_out is not None:
        with atomic_path(json_out) as tmp:
            tmp.write_text(json.dumps({"valset": str(valset), "results": rows}, indent=2) + "\n", encoding="utf-8")
        err.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("fuse")(bench_fuse)
