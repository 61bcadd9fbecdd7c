"""``python -m focalcli.bench align``: registration accuracy and speed on misaligned stacks with known transforms.

Stacks are rendered from real RGB-D images (``../shared/data/rgbd``: NYU v2 frames from metric3d-demo and
Middlebury 2005/2006 views) with a depth-dependent Gaussian blur (sigma linear in inverse depth, focus swept
near to far), focus breathing (magnification 1.00 -> 1.03 across the stack), handheld shake (shifts up to 8 px,
rotations up to 0.5 degrees), per-channel gain/offset drift and Gaussian noise, and written as 8-bit PNG folders.

Every method registers every frame to the middle frame; the error of a frame is the distance between where its
estimated and its true transform send the frame's four corners (pixels, in the reference frame). Seconds per stack
include reading the PNGs; CPU seconds (this process and its children, all threads) are reported beside them
because wall time on a shared machine also measures the neighbours.

Peers on the same stacks:

* ``ecc``: plain single-scale OpenCV ``findTransformECC`` (affine, gray, each frame directly to the reference).
* ``hugin``: Hugin's ``align_image_stack -m`` (control points + optimiser; magnification per image). Not a
  dependency of focal; install it for the benchmark with
  ``apt-get update && apt-get install -y hugin-tools enfuse`` (or pass ``--setup`` to run that).
"""

from __future__ import annotations

import math
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import typer

SCENES = {
    "nyu0": ("metric3d-demo/nyu_demo/rgb/rgb_00000.jpg", "metric3d-demo/nyu_demo/depth/sync_depth_00000.png"),
    "nyu50": ("metric3d-demo/nyu_demo/rgb/rgb_00050.jpg", "metric3d-demo/nyu_demo/depth/sync_depth_00050.png"),
    "aloe": ("middlebury-2001-2006/Aloe/view1.ppm", "middlebury-2001-2006/Aloe/disp1.png"),
    "flowerpots": ("middlebury-2001-2006/Flowerpots/view1.ppm", "middlebury-2001-2006/Flowerpots/disp1.png"),
}
_MARGIN = 1.15  # the scene canvas is this much larger than a frame, so no frame sees past its edge
# Hugin models shake as camera rotation; at a wide field of view that adds a keystone the rendered stacks do not
# have (HFOV 50 deg: 1.4 px mean error). A narrow, macro-like HFOV makes its model match the planar truth.
HUGIN_HFOV = 5


# ---------------------------------------------------------------------------------------------------- rendering


def load_scene(name: str, data: Path) -> tuple[np.ndarray, np.ndarray]:
    """RGB float32 HxWx3 in [0, 1] and inverse depth (NYU) or disparity (Middlebury) scaled to [0, 1]."""
    rgb_path, depth_path = (data / p for p in SCENES[name])
    if not rgb_path.is_file():
        raise typer.BadParameter(f"{rgb_path} not found; point --data at shared/data/rgbd")
    rgb = cv2.cvtColor(cv2.imread(str(rgb_path)), cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    raw = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED).astype(np.float32)
    holes = (raw <= 0).astype(np.uint8)
    inv = 1.0 / np.maximum(raw, 1.0) if name.startswith("nyu") else raw
    inv = cv2.inpaint((255 * inv / inv.max()).astype(np.uint8), holes, 5, cv2.INPAINT_TELEA).astype(np.float32)
    if name.startswith("nyu"):  # NYU frames have a white border
        rgb, inv = rgb[12:-12, 12:-12], inv[12:-12, 12:-12]
    inv = (inv - inv.min()) / max(1e-6, inv.max() - inv.min())
    return rgb, inv


def _canvas(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop ``image`` to the aspect of width x height and resize it to that size."""
    h, w = image.shape[:2]
    if w / h > width / height:
        cw = round(h * width / height)
        image = image[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = round(w * height / width)
        image = image[(h - ch) // 2:(h - ch) // 2 + ch]
    interp = cv2.INTER_AREA if image.shape[1] > width else cv2.INTER_CUBIC
    return cv2.resize(image, (width, height), interpolation=interp)


def _rand(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def render_stack(rgb: np.ndarray, inv_depth: np.ndarray, n: int, size: tuple[int, int], gen: torch.Generator,
                 noise: float = 0.01) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """Render ``n`` misaligned frames of ``size = (W, H)``.

    Returns:
        ``(frames uint8 HxWx3, true 3x3 matrices frame -> reference frame pixel coordinates, reference index)``.
    """
    width, height = size
    cw, ch = round(width * _MARGIN), round(height * _MARGIN)
    scene = np.clip(_canvas(rgb, cw, ch), 0, 1)
    q = _canvas(inv_depth, cw, ch)
    max_sigma = 4.0 * width / 640
    ladder = np.linspace(0.0, max_sigma, 12)
    blurred = np.stack([scene if s < 0.05 else cv2.GaussianBlur(scene, (0, 0), s) for s in ladder])
    rows, cols = np.indices(q.shape)
    ref = (n - 1) // 2
    maps, frames = [], []
    for k in range(n):
        sigma = max_sigma * np.abs(q - k / max(1, n - 1))  # focus sweeps near (q=1) ... far (q=0)
        pos = np.interp(sigma, ladder, np.arange(len(ladder)))
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, len(ladder) - 1)
        t = (pos - lo)[..., None].astype(np.float32)
        defocused = (1 - t) * blurred[lo, rows, cols] + t * blurred[hi, rows, cols]
        mag = 1.0 + 0.03 * k / max(1, n - 1)
        theta = math.radians(_rand(gen, -0.5, 0.5))
        shift = np.array([_rand(gen, -8, 8), _rand(gen, -8, 8)])
        c, s = math.cos(theta) / mag, math.sin(theta) / mag
        a = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # frame -> canvas
        centre_f = np.array([(width - 1) / 2, (height - 1) / 2])
        a[:2, 2] = np.array([(cw - 1) / 2, (ch - 1) / 2]) + shift - a[:2, :2] @ centre_f
        img = cv2.warpPerspective(defocused, a, (width, height), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP)
        gain = np.array([_rand(gen, 0.85, 1.15)] * 3) * np.array([_rand(gen, 0.97, 1.03) for _ in range(3)])
        offset = np.array([_rand(gen, -0.03, 0.03) for _ in range(3)])
        noisy = img * gain + offset + noise * torch.randn(img.shape, generator=gen).numpy()
        frames.append((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8))
        maps.append(a)
    truths = [np.linalg.inv(maps[ref]) @ a for a in maps]
    return frames, truths, ref


def corner_errors(estimated: np.ndarray, truth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Distances (px) between where two 3x3 maps send the four corners of a W x H frame."""
    w, h = size
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T
    e, t = estimated @ corners, truth @ corners
    return np.linalg.norm(e[:2] / e[2] - t[:2] / t[2], axis=0)


# ---------------------------------------------------------------------------------------------------- methods


def run_focal(folder: Path, ref: int) -> list[np.ndarray | None]:
    from focalcli.align.register import AlignConfig, register_stack
    from focalcli.io.stack import scan_stack

    reg = register_stack(scan_stack(folder), AlignConfig(reference=ref))
    return [f.matrix if f.ok else None for f in reg.frames]


def run_ecc(folder: Path, ref: int) -> list[np.ndarray | None]:
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 for p in sorted(folder.glob("*.png"))]
    out = []
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-5)
    for k, g in enumerate(grays):
        if k == ref:
            out.append(np.eye(3))
            continue
        try:
            _, w = cv2.findTransformECC(grays[ref], g, np.eye(2, 3, dtype=np.float32), cv2.MOTION_AFFINE, criteria,
                                        None, 5)
        except cv2.error:
            out.append(None)
            continue
        out.append(np.linalg.inv(np.vstack([w, [0, 0, 1]])))  # ECC gives reference -> frame
    return out


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (Hugin), user + system."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _pano_trafo(pto: Path, image: int, points: np.ndarray, reverse: bool = False) -> np.ndarray:
    args = ["pano_trafo", *(["-r"] if reverse else []), str(pto), str(image)]
    text = "\n".join(f"{x} {y}" for x, y in points) + "\n"
    res = subprocess.run(args, input=text, capture_output=True, text=True, check=True)
    return np.array([[float(v) for v in line.split()] for line in res.stdout.strip().splitlines()])


def run_hugin(folder: Path, ref: int, size: tuple[int, int]) -> list[np.ndarray | None]:
    """Hugin's transforms as the corner maps they imply: returns the frame corners mapped into the reference."""
    files = sorted(folder.glob("*.png"))
    pto = folder / "hugin.pto"
    args = ["align_image_stack", "-m", "--use-given-order", "-f", str(HUGIN_HFOV), "-p", str(pto)]
    subprocess.run([*args, *map(str, files)], capture_output=True, check=False)
    w, h = size
    # Hugin's image coordinates put pixel centres at integers + 0.5 (the image spans [0, W]).
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], float) + 0.5
    if not pto.is_file():
        return [None] * len(files)
    out = []
    for k in range(len(files)):
        try:
            pano = _pano_trafo(pto, k, corners)
            in_ref = _pano_trafo(pto, ref, pano, reverse=True) - 0.5
        except (subprocess.CalledProcessError, ValueError):
            out.append(None)
            continue
        out.append(in_ref)
    return out


# ---------------------------------------------------------------------------------------------------- command


def align(
    sizes: str = typer.Option("640x480,1920x1080", help="Frame sizes WxH, comma-separated."),
    frames: str = typer.Option("5,10", help="Stack lengths, comma-separated."),
    scenes: str = typer.Option("nyu0,aloe,nyu50", help=f"Scenes: {', '.join(SCENES)}."),
    peers: str = typer.Option("ecc,hugin", help="Peers to run beside focal: ecc, hugin (empty for none)."),
    seed: int = typer.Option(0, help="Seed of the random transforms, gains and noise."),
    data: Path = typer.Option(..., "--data", help="The RGB-D folder the stacks are rendered from (e.g. the "
                              "project's shared/data/rgbd: NYU v2 frames of metric3d-demo and open3d samples)."),
    setup: bool = typer.Option(False, "--setup", help="First apt-get install hugin-tools and enfuse (needs root)."),
) -> None:
    """Corner error (px) and seconds per stack of focal's registration and its peers."""
    if setup:
        subprocess.run("apt-get update && apt-get install -y hugin-tools enfuse", shell=True, check=False)
    methods = ["focal", *[p for p in peers.split(",") if p]]
    if "hugin" in methods and shutil.which("align_image_stack") is None:
        typer.echo("hugin: align_image_stack not found; run `apt-get update && apt-get install -y hugin-tools "
                   "enfuse` (or --setup). Skipping it.", err=True)
        methods.remove("hugin")
    size_list = [tuple(int(v) for v in s.split("x")) for s in sizes.split(",")]
    rows = []
    for size in size_list:
        for n in (int(v) for v in frames.split(",")):
            errs = {m: [] for m in methods}
            secs = {m: [] for m in methods}
            cpu = {m: [] for m in methods}
            failed = dict.fromkeys(methods, 0)
            for scene in scenes.split(","):
                gen = torch.Generator().manual_seed(seed)
                rgb, inv = load_scene(scene, data)
                stack, truths, ref = render_stack(rgb, inv, n, size, gen)
                with tempfile.TemporaryDirectory(prefix="focal-bench-align-") as tmp:
                    folder = Path(tmp)
                    for k, f in enumerate(stack):
                        cv2.imwrite(str(folder / f"{k:03d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
                    for m in methods:
                        t0, c0 = time.perf_counter(), _cpu_seconds()
                        if m == "focal":
                            est = run_focal(folder, ref)
                        elif m == "ecc":
                            est = run_ecc(folder, ref)
                        else:
                            est = run_hugin(folder, ref, size)
                        secs[m].append(time.perf_counter() - t0)
                        cpu[m].append(_cpu_seconds() - c0)
                        for k, (e, t) in enumerate(zip(est, truths, strict=True)):
                            if k == ref:
                                continue
                            if e is None:
                                failed[m] += 1
                            elif e.shape == (3, 3):
                                errs[m].append(corner_errors(e, t, size))
                            else:  # hugin: mapped corners
                                w, h = size
                                c = np.array([[0, 0, 1], [w - 1, 0, 1], [w - 1, h - 1, 1], [0, h - 1, 1]], float).T
                                tc = t @ c
                                errs[m].append(np.linalg.norm(e - (tc[:2] / tc[2]).T, axis=1))
            for m in methods:
                e = np.concatenate(errs[m]) if errs[m] else np.array([np.nan])
                rows.append((f"{size[0]}x{size[1]}", n, m, float(e.mean()), float(e.max()),
                             float(np.mean(secs[m])), float(np.mean(cpu[m])), failed[m]))
                typer.echo(f"{rows[-1][0]:>10} N={n:<3} {m:<6} mean {rows[-1][3]:.3f} px  worst {rows[-1][4]:.3f} px  "
                           f"{rows[-1][5]:.2f} s/stack  {rows[-1][6]:.2f} cpu-s/stack  failed {failed[m]}", err=True)
    typer.echo("| size | N | method | mean corner error (px) | worst corner error (px) | s / stack | CPU s / stack "
               "| failed frames |")
    typer.echo("|---|---|---|---|---|---|---|---|")
    for size_s, n, m, mean, worst, sec, cpu_s, fail in rows:
        typer.echo(f"| {size_s} | {n} | {m} | {mean:.3f} | {worst:.3f} | {sec:.2f} | {cpu_s:.2f} | {fail} |")


def register(app: typer.Typer) -> None:
    app.command("align")(align)


if __name__ == "__main__":
    typer.run(align)
