"""``python -m focalcli.bench valset --rgbd DIR -o OUT``: a fixed validation set "made like real use".

The held-out RGB-D scenes of DIR (``io.rgbd.split_scenes``, the split training uses) are rendered by the reference
renderer (``bench.reference_render``: numpy + OpenCV, independent of the training renderer) with a full-frame 50 mm
lens (36 mm sensor, pixel pitch = 36 mm / image width), each scene first resized so its long side is at most 640 px
(area for colour, nearest for depth), in nine sets:

============================  ======  ======  =========================================================
set                           frames  f-stop  focus distances (uniform in diopters)
============================  ======  ======  =========================================================
``f2-n10-uniform``            10      F/2     0.6 m .. 10 m (scene-agnostic, like a photographer)
``f2-n10-depth``              10      F/2     5th .. 95th percentile of the scene's valid depth
``f2.8-n5-uniform``           5       F/2.8   0.6 m .. 10 m
``f2.8-n5-depth``             5       F/2.8   5th .. 95th percentile
``f2-n41-depth``              41      F/2     5th .. 95th percentile (a long, macro-like stack)
``f2-n10-subject``            10      F/2     5th .. 50th percentile (the subject; the rest lies beyond the far
                                              plane, as behind a focus-bracketed subject)
``f2-n10-drift``              10      F/2     0.6 m .. 10 m, each frame's exposure off by up to 1/3 EV
                                              (``EXPOSURE_DRIFT``: auto exposure, or a lens whose aperture
                                              changes with focus)
``f2-n10-jpeg``               10      F/2     0.6 m .. 10 m, frames saved as JPEG of quality ``JPEG_QUALITY``
                                              (as most cameras and phones store them)
``f2-n10-breathing``          10      F/2     0.6 m .. 10 m, each frame magnified about the centre (focus
                                              breathing: ``BREATHING_RANGE`` from the first to the last frame,
                                              linear in diopters, either sign) and shifted by up to ``SHAKE_PX``
                                              (a rail or a hand); the middle frame, the reference of ``focal
                                              align``, is untouched, so the depth is in its geometry
============================  ======  ======  =========================================================

Each stack gets Poisson-Gaussian sensor noise drawn from (seed, scene, set): shot log-uniform in [1e-4, 2e-3], read
log-uniform in [5e-4, 4e-3] (linear light, [0, 1] full scale). The layout is the one ``focal synth`` writes and
``stacks:DIR`` reads: ``OUT/SET/SCENE/stack/`` (8-bit PNG frames, JPEG in ``f2-n10-jpeg``, and ``stack.json``),
``OUT/SET/SCENE/depth.npy`` (float32 metres, 0 = invalid), ``OUT/SET/SCENE/aif.png`` (the sharp source), and
``OUT/manifest.json`` (every parameter, the seed, the renderer, the scenes). Every real stack in ``../shared/data``
moves between frames (1-7 % of breathing, shifts up to 10 px), so only ``f2-n10-breathing`` exercises what they go
through in ``focal predict``: the alignment check, registration and the filled border ring. ``focal eval --data
stacks:OUT/f2-n10-uniform --method classic`` scores one set; ``python -m focalcli.bench depth --valset OUT`` scores
them all.
"""

from __future__ import annotations

import json
import math
import os
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

__all__ = ["SETS", "ValSet", "breathing_warps", "build_valset", "focus_schedule", "stack_noise"]

MAX_SIDE = 640  # scenes are resized so the long side is at most this (px)
FOCAL_LENGTH_MM = 50.0
SENSOR_WIDTH_MM = 36.0
UNIFORM_RANGE_M = (0.6, 10.0)  # scene-agnostic schedule: near and far focus distance
DEPTH_PERCENTILES = (5.0, 95.0)  # scene-dependent schedule
SUBJECT_PERCENTILES = (5.0, 50.0)  # the nearer half of the scene: the rest is beyond the far focus plane
EXPOSURE_DRIFT = 0.25  # f2-n10-drift: each frame's gain is exp(U(-x, x)) in linear light (0.25: about 1/3 EV)
JPEG_QUALITY = 90  # f2-n10-jpeg: a camera's "fine" JPEG
BREATHING_RANGE = (0.01, 0.04)  # f2-n10-breathing: magnification change over the stack, uniform, random sign
SHAKE_PX = 1.5  # f2-n10-breathing: each frame but the middle one shifted by U(-x, x) px in x and y
SHOT_RANGE = (1e-4, 2e-3)  # shot-noise gain, log-uniform
READ_RANGE = (5e-4, 4e-3)  # read-noise standard deviation, log-uniform


@dataclass(frozen=True)
class ValSet:
    """One rendering setting of the validation set."""

    name: str
    frames: int
    f_number: float
    schedule: str  # "uniform" (0.6 .. 10 m), "depth" (5th .. 95th percentile) or "subject" (5th .. 50th)
    drift: bool = False  # each frame's exposure drawn around 1 (``EXPOSURE_DRIFT``)
    jpeg: bool = False  # frames saved as JPEG (``JPEG_QUALITY``) instead of PNG
    breathing: bool = False  # frames magnified and shifted (``breathing_warps``): they need alignment


SETS = (
    ValSet("f2-n10-uniform", 10, 2.0, "uniform"),
    ValSet("f2-n10-depth", 10, 2.0, "depth"),
    ValSet("f2.8-n5-uniform", 5, 2.8, "uniform"),
    ValSet("f2.8-n5-depth", 5, 2.8, "depth"),
    ValSet("f2-n41-depth", 41, 2.0, "depth"),  # a long, macro-like stack (bench depth --frame-index)
    ValSet("f2-n10-subject", 10, 2.0, "subject"),  # half the scene beyond the far focus plane
    ValSet("f2-n10-drift", 10, 2.0, "uniform", drift=True),  # exposure drift between frames
    ValSet("f2-n10-jpeg", 10, 2.0, "uniform", jpeg=True),  # compressed frames
    ValSet("f2-n10-breathing", 10, 2.0, "uniform", breathing=True),  # focus breathing and shake
)


def focus_schedule(kind: str, frames: int, depth_m) -> list[float]:
    """Focus distances (metres, increasing) uniform in diopters.

    Args:
        kind: ``uniform`` (``UNIFORM_RANGE_M``), ``depth`` (``DEPTH_PERCENTILES`` of the valid depth) or
            ``subject`` (``SUBJECT_PERCENTILES``).
        frames: number of frames.
        depth_m: the scene's depth map (metres, 0 = invalid), used by ``depth``.
    """
    import numpy as np

    if kind == "uniform":
        near, far = UNIFORM_RANGE_M
    elif kind in ("depth", "subject"):
        valid = depth_m[depth_m > 0]
        percentiles = DEPTH_PERCENTILES if kind == "depth" else SUBJECT_PERCENTILES
        near, far = (float(v) for v in np.percentile(valid, percentiles))
        if far < near * 1.05:  # a flat scene: still span a little depth of field
            near, far = near / 1.1, far * 1.1
    else:
        raise ValueError(f"unknown schedule {kind!r}")
    dioptres = np.linspace(1.0 / near, 1.0 / far, frames) if frames > 1 else np.array([2.0 / (near + far)])
    return [float(1.0 / d) for d in dioptres]


def breathing_warps(rng, focus_m: list[float], width: int, height: int) -> tuple[list, list[float], list[list[float]]]:
    """Focus breathing and shake of one stack: frame k is magnified about the image centre by ``1 + b (u_k -
    u_ref)``, u the frame's place in the schedule (0 at the first frame, 1 at the last, linear in diopters), ``|b|``
    uniform in ``BREATHING_RANGE`` with a random sign, and shifted by ``U(-SHAKE_PX, SHAKE_PX)`` px in x and y; the
    reference frame ``(N - 1) // 2`` (the middle one, ``focal align``'s) does not move.

    Returns:
        ``(matrices, scales, shifts)``: a 2x3 matrix per frame (source grid -> frame, for ``cv2.warpAffine``), the
        magnifications and the ``[dx, dy]`` shifts in px.
    """
    import numpy as np

    n = len(focus_m)
    dioptres = 1.0 / np.asarray(focus_m, np.float64)
    u = (dioptres[0] - dioptres) / (dioptres[0] - dioptres[-1]) if n > 1 else np.zeros(1)
    ref = (n - 1) // 2
    b = rng.uniform(*BREATHING_RANGE) * (1.0 if rng.random() < 0.5 else -1.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    matrices, scales, shifts = [], [], []
    for k in range(n):
        s = 1.0 + b * (u[k] - u[ref])
        dx, dy = (0.0, 0.0) if k == ref else (float(v) for v in rng.uniform(-SHAKE_PX, SHAKE_PX, 2))
        matrices.append(np.array([[s, 0.0, (1.0 - s) * cx + dx], [0.0, s, (1.0 - s) * cy + dy]]))
        scales.append(float(s))
        shifts.append([dx, dy])
    return matrices, scales, shifts


def _rng(seed: int, scene: str, valset: str):
    import numpy as np

    keys = [int(seed) % 2**63, zlib.crc32(scene.encode("utf-8")), zlib.crc32(valset.encode("utf-8"))]
    return np.random.default_rng(np.random.SeedSequence(keys))


def stack_noise(rng) -> tuple[float, float]:
    """(shot, read) of one stack, log-uniform in ``SHOT_RANGE`` and ``READ_RANGE``."""
    shot = math.exp(rng.uniform(math.log(SHOT_RANGE[0]), math.log(SHOT_RANGE[1])))
    read = math.exp(rng.uniform(math.log(READ_RANGE[0]), math.log(READ_RANGE[1])))
    return shot, read


def _fit(rgb, depth):
    import cv2

    h, w = depth.shape
    scale = MAX_SIDE / max(h, w)
    if scale >= 1:
        return rgb, depth
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return (cv2.resize(rgb, size, interpolation=cv2.INTER_AREA),
            cv2.resize(depth, size, interpolation=cv2.INTER_NEAREST))


def _write_png(path: Path, rgb_u8, jpeg_quality: int | None = None) -> None:
    """An 8-bit RGB image as PNG, or as JPEG of ``jpeg_quality`` (the suffix of ``path`` must match)."""
    import cv2

    from focalcli.errors import OutputError
    from focalcli.io.atomic import atomic_path

    params = [] if jpeg_quality is None else [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2BGR), params):
            raise OutputError(f"{path}: cannot write")


def build_valset(rgbd: str | os.PathLike, out: str | os.PathLike, *, holdout: int = 5, seed: int = 0,
                 overwrite: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
    """Render the validation set (see the module docstring); the folder ``out`` is written as a whole.

    Args:
        rgbd: folder of RGB-D scenes (``io.rgbd.find_rgbd``).
        out: output folder (replaced only with ``overwrite``).
        holdout: every ``holdout``-th scene is used (``io.rgbd.split_scenes``); 0 uses them all.
        seed: noise seed.
        overwrite: replace an existing ``out``.
        progress: called with ``(stacks done, total)``.

    Returns:
        The manifest (also written to ``OUT/manifest.json``).

    Raises:
        InputError: no scenes, or none held out. OutputError: ``out`` exists (without ``overwrite``) or cannot be
            written.
    """
    import numpy as np

    from focalcli.bench import reference_render as ref
    from focalcli.errors import InputError
    from focalcli.io.atomic import atomic_folder, check_output_folder
    from focalcli.io.depth import write_depth
    from focalcli.io.rgbd import find_rgbd, load_rgbd, split_scenes
    from focalcli.io.stack import Camera, write_stack_json

    out = check_output_folder(out, overwrite=overwrite, inputs=[rgbd])
    if holdout < 0:
        raise InputError(f"--holdout must be >= 0, got {holdout}")
    scenes = find_rgbd(rgbd)
    held = split_scenes(scenes, holdout)[1] if holdout else scenes
    if not held:
        raise InputError(f"{rgbd}: no scene is held out with --holdout {holdout}")
    total, done = len(held) * len(SETS), 0
    entries = []
    options = ref.RenderOptions()
    with atomic_folder(out) as tmp:
        for scene in held:
            sample = load_rgbd(scene)
            rgb = np.ascontiguousarray(sample.rgb.permute(1, 2, 0).numpy())  # (H, W, 3)
            depth = np.ascontiguousarray(sample.depth[0].numpy())  # (H, W)
            if not (depth > 0).any():
                raise InputError(f"{scene.name}: no valid depth")
            rgb, depth = _fit(rgb, depth)
            h, w = depth.shape
            pitch = SENSOR_WIDTH_MM * 1000.0 / w
            entry = {"name": scene.name, "source": sample.meta, "size": [h, w], "pixel_pitch_um": pitch,
                     "valid_depth_fraction": round(float((depth > 0).mean()), 6), "stacks": {}}
            for vs in SETS:
                rng = _rng(seed, scene.name, vs.name)
                shot, read = stack_noise(rng)
                focus = focus_schedule(vs.schedule, vs.frames, depth)
                optics = ref.Optics(FOCAL_LENGTH_MM, vs.f_number, pitch)
                gains = ([math.exp(rng.uniform(-EXPOSURE_DRIFT, EXPOSURE_DRIFT)) for _ in focus] if vs.drift
                         else None)
                warps = breathing_warps(rng, focus, w, h) if vs.breathing else None
                frames = ref.render_stack(rgb, depth, focus, optics, shot=shot, read=read, rng=rng, options=options,
                                          gains=gains, warps=None if warps is None else warps[0])
                folder = tmp / vs.name / scene.name
                (folder / "stack").mkdir(parents=True)
                suffix, quality = (".jpg", JPEG_QUALITY) if vs.jpeg else (".png", None)
                names = [f"frame_{i:02d}{suffix}" for i in range(len(frames))]
                for name, frame in zip(names, frames, strict=True):
                    _write_png(folder / "stack" / name, frame, quality)
                camera = Camera(focal_length_mm=FOCAL_LENGTH_MM, f_number=vs.f_number, pixel_pitch_um=round(pitch, 6))
                write_stack_json(folder / "stack", names, focus, camera,
                                 extra={"source": "focal bench valset", "scene": scene.name, "set": vs.name,
                                        "noise": {"shot": shot, "read": read}})
                write_depth(folder / "depth.npy", depth)
                _write_png(folder / "aif.png", np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
                entry["stacks"][vs.name] = {"focus_distances_m": [round(f, 6) for f in focus],
                                            "shot_noise": shot, "read_noise": read}
                if gains is not None:
                    entry["stacks"][vs.name]["exposure_gains"] = [round(g, 6) for g in gains]
                if warps is not None:
                    entry["stacks"][vs.name]["breathing"] = {"scales": [round(s, 6) for s in warps[1]],
                                                             "shifts_px": [[round(v, 3) for v in d] for d in warps[2]]}
                done += 1
                if progress is not None:
                    progress(done, total)
            entries.append(entry)
        manifest = {
            "created_by": "python -m focalcli.bench valset",
            "rgbd": str(rgbd),
            "holdout": holdout,
            "seed": seed,
            "renderer": ref.DESCRIPTION,
            "render_options": asdict(options),
            "camera": {"focal_length_mm": FOCAL_LENGTH_MM, "sensor_width_mm": SENSOR_WIDTH_MM,
                       "pixel_pitch": "sensor_width_mm / image width"},
            "max_side_px": MAX_SIDE,
            "resize": {"colour": "area", "depth": "nearest"},
            "schedules": {"uniform": {"near_m": UNIFORM_RANGE_M[0], "far_m": UNIFORM_RANGE_M[1],
                                      "spacing": "uniform in diopters"},
                          "depth": {"percentiles": list(DEPTH_PERCENTILES), "spacing": "uniform in diopters"},
                          "subject": {"percentiles": list(SUBJECT_PERCENTILES), "spacing": "uniform in diopters"}},
            "noise": {"model": "x' = shot * Poisson(x / shot) + Normal(0, read^2), linear light",
                      "shot_range": list(SHOT_RANGE), "read_range": list(READ_RANGE),
                      "distribution": "log-uniform, drawn from (seed, scene, set)"},
            "exposure_drift": {"sets": [s.name for s in SETS if s.drift], "gain": f"exp(U(-{EXPOSURE_DRIFT:g}, "
                               f"{EXPOSURE_DRIFT:g})) per frame, linear light, before the noise"},
            "jpeg": {"sets": [s.name for s in SETS if s.jpeg], "quality": JPEG_QUALITY, "writer": "OpenCV"},
            "breathing": {"sets": [s.name for s in SETS if s.breathing], "reference_frame": "(N - 1) // 2",
                          "magnification": f"1 + b (u - u_ref), |b| uniform in {list(BREATHING_RANGE)}, random sign, "
                          "u the frame's place in the schedule (linear in diopters)",
                          "shake_px": f"U(-{SHAKE_PX:g}, {SHAKE_PX:g}) in x and y", "resampling": "bicubic, "
                          "reflected borders, on the optical image (before exposure and noise)"},
            "sets": [asdict(s) for s in SETS],
            "scenes": entries,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def bench_valset(
    rgbd: Path = typer.Option(..., "--rgbd", help="Folder of RGB-D scenes (as focal synth reads them)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (written as a whole)."),
    holdout: int = typer.Option(5, "--holdout", min=0, help="Use every K-th scene, from the first (the scenes "
                                "training holds out); 0 = all."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
) -> None:
    """Render the fixed validation set: held-out RGB-D scenes, 9 camera/schedule settings, realistic noise."""
    from rich.console import Console

    from focalcli.errors import FocalError

    err = Console(stderr=True)
    try:
        manifest = build_valset(rgbd, out, holdout=holdout, seed=seed, overwrite=overwrite,
                                progress=lambda i, n: err.print(f"\r{i}/{n} stacks", end=""))
    except FocalError as e:
        err.print(f"\n[bold red]error:[/bold red] {e}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    err.print(f"\nwrote {out}: {len(manifest['scenes'])} scenes x {len(SETS)} sets "
              f"({', '.join(s.name for s in SETS)})")


def register(app: typer.Typer) -> None:
    app.command("valset")(bench_valset)
