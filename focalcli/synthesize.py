"""Synthetic focal stacks to disk: what ``focal synth`` calls. Parallel, deterministic per seed, resumable.

For each scene NAME it writes ``OUT/NAME/stack/`` (frames + ``stack.json`` with ``focus_distances_m`` and
``camera``), ``OUT/NAME/depth.npy`` (float32 metres, 0 = invalid), ``OUT/NAME/aif.png`` (the sharp source image)
and ``OUT/NAME/scene.json`` (source, seed, every parameter), and at the end ``OUT/manifest.json`` listing
everything. A scene is rendered into a staging folder ``OUT/.NAME.<random suffix>.partial`` and renamed when
complete, so ``OUT/NAME`` is always whole; a second run skips complete scenes rendered with the same options and
redoes the rest (staging folders a killed run left are removed; only folders focal marked as its own are ever deleted).

Worker processes die with the parent (even after ``kill -9``), and Ctrl-C stops the pool at once.

With ``SynthJob.random = COUNT`` it writes COUNT random *training* samples instead (``OUT/random__000000`` ...,
same layout): each a ``crop``-px window of a virtual image with random optics, focus schedule and PSF, drawn like
the on-the-fly training sources (``data.synthetic``) from the training split of the RGB-D scenes (held-out
scenes are never used) or from dead-leaves scenes. Noise-free unless the job asks for noise: ``focal train`` adds
sensor noise and picks sub-schedules of these stacks as augmentation, so one rendered set serves many epochs on a
machine where rendering, not the model, would bound training.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from focalcli.data.synthetic import synthetic_source
from focalcli.errors import ConfigError, FocalError, OutputError
from focalcli.io.atomic import (
    PARTIAL_MARKER,
    atomic_path,
    check_output_tree,
    partial_folder,
    remove_partial_folders,
)
from focalcli.io.depth import write_depth
from focalcli.io.images import write_image
from focalcli.io.rgbd import RGBDScene, find_rgbd, load_rgbd
from focalcli.io.stack import Camera, write_stack
from focalcli.optics.thinlens import MIN_F_NUMBER, pixel_pitch_um
from focalcli.runtime import worker_pool
from focalcli.synth.procedural import DeadLeavesConfig, dead_leaves, load_textures, pick_textures
from focalcli.synth.render import SynthConfig, render_sample
from focalcli.synth.sampling import fixed_params, parse_schedule

__all__ = ["SCENE_FILES", "SynthJob", "scene_seed", "synthesize"]

SCENE_FILES = ("stack/stack.json", "depth.npy", "aif.png", "scene.json")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class SynthJob:
    """The options of one ``focal synth`` run (recorded in every scene.json and in the manifest)."""

    frames: int = 5  # frames per stack (a list schedule sets its own count)
    f_number: float = 2.0  # N
    focal_length_mm: float = 50.0  # f
    sensor_width_mm: float = 36.0  # pixel pitch = sensor width / image width
    schedule: str = "depth:5,95"  # see synth.sampling.parse_schedule
    seed: int = 0  # base seed; each scene gets scene_seed(seed, name)
    procedural: int = 0  # number of dead-leaves scenes added
    procedural_size: tuple[int, int] = (480, 640)  # (H, W) of procedural scenes
    depth_scale: float | None = None  # depth PNG value per metre for folder pairs (None = 1000 / annotations)
    render: SynthConfig = field(default_factory=SynthConfig)  # renderer options
    random: int = 0  # > 0: this many random training samples instead of one stack per scene (see synthesize)
    crop: int = 256  # random samples: side (px) of the window of a virtual image
    holdout: int = 5  # random samples: every K-th RGB-D scene is held out (never drawn; 0 = none)
    exclude: tuple[str, ...] = ()  # random samples: leave out RGB-D scenes whose name contains any of these
    procedural_share: float = 0.5  # random samples: share drawn from dead-leaves scenes (the rest from RGB-D)

    def __post_init__(self):
        if self.frames < 1:
            raise ConfigError(f"--frames must be >= 1, got {self.frames}")
        optics = (self.f_number, self.focal_length_mm, self.sensor_width_mm)
        if not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in optics):
            raise ConfigError("--f-number, --focal-length and --sensor-width must be finite numbers > 0")
        if self.f_number < MIN_F_NUMBER:
            raise ConfigError(f"--f-number {self.f_number:g} is impossible: no lens in air is faster than "
                              f"f/{MIN_F_NUMBER:g}")
        if self.procedural < 0 or min(self.procedural_size) < 8:
            raise ConfigError("--procedural must be >= 0 and procedural scenes at least 8x8 px")
        if self.depth_scale is not None and self.depth_scale <= 0:
            raise ConfigError(f"--depth-scale must be > 0, got {self.depth_scale}")
        if self.random < 0 or self.crop < 16 or self.holdout < 0 or not 0 <= self.procedural_share <= 1:
            raise ConfigError("--random must be >= 0, --crop >= 16, --holdout >= 0, --procedural-share in [0, 1]")
        schedule = parse_schedule(self.schedule)
        if schedule.kind == "random":
            raise ConfigError("--schedule random is for training loaders; use depth, uniform:NEAR,FAR or list:...")
        if schedule.kind in ("uniform", "list") and min(schedule.values) <= self.focal_length_mm / 1000:
            raise ConfigError(f"--schedule {self.schedule}: every focus distance must lie beyond the focal length "
                              f"({self.focal_length_mm:g} mm); a lens cannot focus closer")

    def to_json(self) -> dict:
        d = asdict(self)
        d["procedural_size"] = list(self.procedural_size)
        d["exclude"] = list(self.exclude)
        return d


def scene_seed(seed: int, name: str) -> int:
    """Seed of one scene: independent of scene order and worker count."""
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % (2**63 - 1)


@dataclass(frozen=True)
class _Task:
    name: str
    scene: RGBDScene | None  # None for procedural and random samples
    textures: tuple[RGBDScene, ...]  # texture sources for procedural scenes
    rgbd: str | None = None  # random samples: the RGB-D folder they are drawn from (None: procedural only)
    random: bool = False  # a random training sample (SynthJob.random)


@functools.lru_cache(maxsize=2)
def _training_sources(rgbd: str | None, options: str):
    """The training sources random samples are drawn from: (RGB-D source or None, procedural source); built once
    per process (``options`` is their JSON)."""
    opts = json.loads(options)
    rgbd_source = synthetic_source("synth", rgbd, train=True, **opts) if rgbd is not None else None
    return rgbd_source, synthetic_source("procedural", None, train=True, **opts)


def _random_params(task: _Task, job: SynthJob, g: torch.Generator):
    """A random training sample: a window of a virtual image with random optics and schedule (``focalcli.data``'s
    synthetic sources), with the noise of ``job.render`` (none by default: add it when training)."""
    options = {"holdout": job.holdout, "exclude": list(job.exclude), "texture_dir": task.rgbd or ""}
    rgbd_source, procedural = _training_sources(task.rgbd, json.dumps(options, sort_keys=True))
    use_procedural = rgbd_source is None or float(torch.rand((), generator=g)) < job.procedural_share
    source = procedural if use_procedural else rgbd_source
    params, rgb, depth = source.draw_params(g, (job.crop, job.crop), job.frames)
    params = replace(params, shot_noise=job.render.shot_noise, read_noise=job.render.read_noise)
    return rgb, depth, params, {"kind": "random", "source": source.name}


@functools.lru_cache(maxsize=1)
def _textures(scenes: tuple[RGBDScene, ...]) -> list[torch.Tensor]:
    """The texture pool of procedural scenes (``synth.procedural.load_textures``), decoded once per process."""
    return load_textures(scenes)


def _load(task: _Task, job: SynthJob, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
    if task.scene is not None:
        sample = load_rgbd(task.scene)
        return sample.rgb, sample.depth, sample.meta
    h, w = job.procedural_size
    cfg = DeadLeavesConfig()
    rgb, depth = dead_leaves(g, h, w, _textures(task.textures) or None, cfg)
    meta = {"kind": "procedural", "dead_leaves": asdict(cfg), "textures": [str(s.rgb) for s in task.textures]}
    return rgb, depth, meta


def _render_scene(task: _Task, job: SynthJob, out: Path, threads: int) -> dict:
    """Render one scene into a staging folder, then rename it to OUT/NAME. Returns its manifest entry."""
    if threads:
        torch.set_num_threads(threads)
    seed = scene_seed(job.seed, task.name)
    g = torch.Generator().manual_seed(seed)
    final = out / task.name
    try:
        if task.random:
            rgb, depth, params, meta = _random_params(task, job, g)
        else:
            rgb, depth, meta = _load(task, job, g)
            camera = Camera(focal_length_mm=job.focal_length_mm, f_number=job.f_number,
                            pixel_pitch_um=round(pixel_pitch_um(job.sensor_width_mm, rgb.shape[-1]), 6))
            r = job.render
            params = fixed_params(camera, parse_schedule(job.schedule), depth, job.frames, psf=r.psf,
                                  psf_power=r.psf_power, shot_noise=r.shot_noise, read_noise=r.read_noise)
        stack, gt = render_sample(rgb, depth, params, config=job.render, generator=g)
    except FocalError as e:
        if task.name in str(e):
            raise
        raise type(e)(f"{task.name}: {e}") from e
    with partial_folder(out, task.name) as tmp:
        write_stack(stack, tmp / "stack", extra={"source": "focal synth", "scene": task.name})
        write_depth(tmp / "depth.npy", gt[0].numpy())
        write_image(tmp / "aif.png", rgb.permute(1, 2, 0).numpy(), bit_depth=stack.bit_depth)
        entry = {
            "name": task.name,
            "seed": seed,
            "source": meta,
            "size": [int(rgb.shape[1]), int(rgb.shape[2])],
            "valid_depth_fraction": round(float((gt > 0).float().mean()), 6),
            "params": params.to_json(),
            "files": [f"{task.name}/stack/{n}" for n in stack.names] + [f"{task.name}/{f}" for f in SCENE_FILES],
            "job": job.to_json(),
        }
        with atomic_path(tmp / "scene.json") as p:
            p.write_text(json.dumps(entry, indent=2) + "\n", encoding="utf-8")
        try:
            (tmp / PARTIAL_MARKER).unlink()
            if final.exists():  # an incomplete earlier render of this scene (checked in _complete)
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError as e:
            raise OutputError(f"{final}: cannot write ({e.strerror or e})") from e
    return entry


def _complete(out: Path, name: str, job: SynthJob, overwrite: bool) -> dict | None:
    """The scene's manifest entry if OUT/NAME is complete and made with ``job``; None if it must be (re)done."""
    folder = out / name
    if not folder.exists():
        return None
    meta = folder / "scene.json"
    try:
        entry = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if overwrite:
            return None
        raise OutputError(f"{folder}: exists and was not written by focal synth (use --overwrite to replace it)"
                          ) from None
    if overwrite:
        return None
    if entry.get("job") != job.to_json():
        raise OutputError(f"{folder}: was rendered with other options (use --overwrite, or another output folder)")
    missing = [f for f in entry.get("files", []) if not (out / f).is_file()]
    return None if missing else entry


def synthesize(
    rgbd: str | os.PathLike | None,
    out: str | os.PathLike,
    job: SynthJob = SynthJob(),
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Render focal stacks for every RGB-D scene under ``rgbd`` and ``job.procedural`` dead-leaves scenes, or
    ``job.random`` random training samples (module docstring).

    Args:
        rgbd: folder of RGB-D scenes (``io.rgbd.find_rgbd``), or None for procedural scenes only.
        out: output folder (created, with missing parent folders; removed again if nothing was rendered).
        job: options.
        workers: parallel processes (1 = in this process).
        overwrite: re-render scenes that exist already (otherwise complete ones are skipped).
        progress: called as ``progress(done, total)``.

    Returns:
        The manifest (also written to ``OUT/manifest.json``): job, seed, and one entry per scene.

    Raises:
        InputError: no scenes, unreadable or inconsistent input (names the scene).
        ConfigError: bad options.
        OutputError: ``out`` (or a folder above it) is a file, or it holds scenes made with other options.
    """
    out = Path(out)
    if rgbd is None and job.procedural == 0 and job.random == 0:
        raise ConfigError("nothing to render: give --rgbd DIR, --procedural COUNT or --random COUNT")
    scenes = find_rgbd(rgbd, job.depth_scale) if rgbd is not None else []
    if job.random:
        tasks = [_Task(f"random__{i:06d}", None, (), None if rgbd is None else str(rgbd), True)
                 for i in range(job.random)]
    else:
        textures = tuple(pick_textures(scenes))
        tasks = [_Task(s.name, s, ()) for s in scenes]
        tasks += [_Task(f"procedural__{i:05d}", None, textures) for i in range(job.procedural)]
    check_output_tree(out)  # missing parents are made below
    _check_manifest(out, job, overwrite)
    entries: dict[str, dict] = {}
    todo = []
    for t in tasks:
        done = _complete(out, t.name, job, overwrite) if out.is_dir() else None
        if done is None:
            todo.append(t)
        else:
            entries[t.name] = done
    created = [q for q in [out, *out.absolute().parents] if not q.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    try:
        for t in tasks:  # left by a killed run (only folders focal marked as its own)
            remove_partial_folders(out, t.name)
        total = len(tasks)
        if progress:
            progress(len(entries), total)
        if workers <= 1 or len(todo) <= 1:
            for t in todo:
                entries[t.name] = _render_scene(t, job, out, 0)
                if progress:
                    progress(len(entries), total)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            render = functools.partial(_render_scene, job=job, out=out, threads=threads)
            try:
                with worker_pool(min(workers, len(todo))) as pool:
                    for entry in pool.imap_unordered(render, todo):
                        entries[entry["name"]] = entry
                        if progress:
                            progress(len(entries), total)
            except BaseException:
                for t in todo:  # what the terminated workers were rendering
                    remove_partial_folders(out, t.name)
                raise
        manifest = {
            "created_by": "focal synth",
            "seed": job.seed,
            "job": job.to_json(),
            "rgbd": str(rgbd) if rgbd is not None else None,
            "count": len(tasks),
            "scenes": [{k: v for k, v in entries[t.name].items() if k != "job"} for t in tasks],
        }
        with atomic_path(out / MANIFEST) as p:
            p.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    finally:
        for q in created:
            with contextlib.suppress(OSError):
                q.rmdir()  # only when nothing was rendered (the folders are empty)
    return manifest


def _check_manifest(out: Path, job: SynthJob, overwrite: bool) -> None:
    """An existing ``OUT/manifest.json`` is replaced only when it is focal synth's, for the same options, or with
    ``overwrite``.

    Raises:
        OutputError: it belongs to something else or to a run with other options.
    """
    path = out / MANIFEST
    if overwrite or not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        ours = isinstance(old, dict) and old.get("created_by") == "focal synth"
    except (OSError, UnicodeDecodeError, ValueError):
        ours = False
    if not ours:
        raise OutputError(f"{path}: exists and was not written by focal synth (use --overwrite to replace it)")
    if old.get("job") != job.to_json():
        raise OutputError(f"{out}: holds a run with other options (use --overwrite, or another output folder)")
