"""On-the-fly synthetic focal stacks, rendered inside the data loader with ``focalcli.synth``.

- ``synth:DIR``: the RGB-D scenes under DIR (``focalcli.io.rgbd.find_rgbd``). Every ``holdout``-th scene (in name
  order, starting with the first) is held out: never drawn for training, and the evaluation set is made of them.
- ``procedural``: dead-leaves scenes (``focalcli.synth.procedural``), textured with the training scenes of
  ``texture_dir`` when given (``synth.procedural.pick_textures``; held-out scenes are never used as textures), else
  procedural noise. Training and evaluation scenes come from unrelated seed streams.

A training sample is a window (``size``, e.g. 256 px) of a *virtual image* whose width is drawn per sample
(``image_width_px``, around the model's working resolution): an RGB-D scene is resized to that width (never below
the window) and cropped, a procedural scene is drawn at the window's size; the pixel pitch is the sensor width over
the virtual width, so the window shows the blur a camera records at that resolution (``synth.sampling``). Camera,
focus schedule, PSF, exposure, colour gains and flip come from the passed generator. ``prepare`` stops before
rendering (the CPU half, in a loader worker); the training augmentation then rotates the scene and fixes the sensor
noise, and the sample is rendered in the worker or on the training device (``data.prepared``). ``draw``
renders a prepared sample at once, noise-free and in float.

Evaluation items are deterministic and look like use: the scene at up to ``eval_size`` px on its long side (a
procedural scene is ``eval_size`` x 3/4 of it), ``eval_frames`` frames at ``eval_f_number`` with the scene-agnostic
``eval_schedule``, a full-frame ``eval_focal_length_mm`` lens, shot + read noise and 8-bit frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from focalcli.config import build_dataclass
from focalcli.data.base import pick, sample_generator
from focalcli.data.prepared import render_one, with_noise
from focalcli.errors import ConfigError, InputError
from focalcli.io.depth import valid_depth
from focalcli.io.rgbd import find_rgbd, load_rgbd, split_scenes
from focalcli.io.stack import Camera
from focalcli.optics.thinlens import MIN_F_NUMBER, pixel_pitch_um
from focalcli.synth.procedural import DeadLeavesConfig, dead_leaves, load_textures, pick_textures
from focalcli.synth.render import SynthConfig, crop_flip, render_sample
from focalcli.synth.sampling import SamplingRanges, fixed_params, parse_schedule, sample_params

__all__ = ["SyntheticOptions", "synthetic_source"]

_EVAL_STREAM = 0x5EED_E7A1  # seed key of procedural evaluation scenes (training uses the run's seed)
_CROP_TRIES = 20  # RGB-D crops drawn before giving up on finding enough valid depth
_CACHE_SIDE = 1280  # RGB-D scenes are cached at most this large (long side, px)


@dataclass(frozen=True)
class SyntheticOptions:
    """Options of the synthetic sources (``synth_options`` in the training config)."""

    holdout: int = 5  # synth:DIR holds out every K-th scene for evaluation (0 = none: evaluate on all)
    exclude: tuple[str, ...] = ()  # synth:DIR / texture_dir: leave out scenes whose name contains any of these
    min_valid: float = 0.2  # synth:DIR training crops need at least this fraction of valid depth (redrawn if not)
    texture_dir: str = ""  # procedural: texture images are cut from the training RGB-D scenes here ("" = noise)
    shapes: int = 40  # procedural: shapes per scene
    f_number: tuple[float, float] = (1.4, 5.6)  # training: f-number range (log-uniform)
    focal_length_mm: tuple[float, float] = (35.0, 105.0)  # training: focal length range (log-uniform)
    image_width_px: tuple[float, float] = (384.0, 768.0)  # training: virtual image width (px), log-uniform
    render_method: str = "layered"  # layered (occlusion-aware), gather, or mixed (each sample draws one)
    eval_items: int = 16  # procedural: number of evaluation scenes
    eval_size: int = 640  # evaluation images: long side (px) at most
    eval_frames: int = 10  # evaluation stack length
    eval_f_number: float = 2.0  # evaluation aperture
    eval_focal_length_mm: float = 50.0  # evaluation focal length
    eval_sensor_width_mm: float = 36.0  # evaluation sensor width (pixel pitch = width / image width)
    eval_schedule: str = "uniform:0.6,10"  # evaluation focus schedule (synth.sampling.parse_schedule), scene-agnostic
    eval_shot_noise: float = 5e-4  # evaluation shot noise (variance per unit linear signal)
    eval_read_noise: float = 2e-3  # evaluation read noise (std, linear full scale)

    def __post_init__(self):
        problems = []
        for key, lo in (("f_number", MIN_F_NUMBER), ("focal_length_mm", 1e-3)):
            v = getattr(self, key)
            if len(v) != 2 or not all(math.isfinite(x) and x >= lo for x in v) or v[0] > v[1]:
                problems.append(f"{key} must be [LOW, HIGH] with {lo:g} <= LOW <= HIGH, got {list(v)}")
        for key, lo in (("eval_f_number", MIN_F_NUMBER), ("eval_focal_length_mm", 1e-3),
                        ("eval_sensor_width_mm", 1e-3)):
            if not (math.isfinite(getattr(self, key)) and getattr(self, key) >= lo):
                problems.append(f"{key} must be >= {lo:g}, got {getattr(self, key)}")
        if not 0 <= self.min_valid <= 1 or self.shapes < 1 or self.eval_items < 1:
            problems.append("min_valid must be in [0, 1], shapes and eval_items >= 1")
        if problems:
            raise ConfigError("synth_options: " + "; ".join(problems))


def _fit(rgb: torch.Tensor, depth: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize to ``size`` (H, W): area/bilinear colour (antialiased when shrinking), nearest depth (holes stay 0)."""
    h, w = rgb.shape[-2:]
    if (h, w) == tuple(size):
        return rgb, depth
    shrink = size[0] < h
    rgb = F.interpolate(rgb[None], size=size, mode="bilinear", antialias=shrink, align_corners=False)[0]
    depth = F.interpolate(depth[None], size=size, mode="nearest")[0]
    return rgb.clamp(0, 1), depth


def _scaled(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(1, round(h * scale)), max(1, round(w * scale))


def _log_uniform(g: torch.Generator, lo: float, hi: float) -> float:
    u = float(torch.rand((), generator=g, dtype=torch.float64))
    return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))


def _keep(scenes: list, holdout: int, exclude: tuple[str, ...], train: bool) -> list:
    """The training (``train``) or held-out scenes (``io.rgbd.split_scenes``; all of them without a holdout),
    without excluded names."""
    training, held = split_scenes(scenes, holdout)
    chosen = training if train else (held if holdout else scenes)
    return [s for s in chosen if not any(x in s.name for x in exclude)]


class SyntheticSource:
    """Stacks rendered from RGB-D scenes (``scenes``) or dead-leaves scenes (``scenes`` is None)."""

    def __init__(self, name: str, scenes: list | None, options: SyntheticOptions, train: bool,
                 textures: list | None = None):
        self.name, self.scenes, self.options, self.train = name, scenes, options, train
        self._texture_scenes = textures or []
        self._textures: list[torch.Tensor] | None = None
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._items: dict[int, dict] = {}  # rendered evaluation items (deterministic, so rendered once)

    # --- scenes
    def _scene(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene ``index`` as (sRGB (3, H, W), depth (1, H, W)), decoded once per process at a bounded size."""
        scene = self.scenes[index]
        if scene.name not in self._cache:
            s = load_rgbd(scene)
            if not bool((s.depth > 0).any()):
                raise InputError(f"{scene.name}: no valid depth")
            rgb, depth = s.rgb, s.depth
            h, w = rgb.shape[-2:]
            if max(h, w) > _CACHE_SIDE:
                rgb, depth = _fit(rgb, depth, _scaled(h, w, _CACHE_SIDE / max(h, w)))
            self._cache[scene.name] = (rgb, depth)
        return self._cache[scene.name]

    def _texture_pool(self) -> list[torch.Tensor] | None:
        if self._textures is None:
            self._textures = load_textures(self._texture_scenes)
        return self._textures or None

    def _procedural(self, g: torch.Generator, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        return dead_leaves(g, h, w, self._texture_pool(), DeadLeavesConfig(shapes=self.options.shapes))

    def _render(self, rgb, depth, params, g, *, method: str, noise: bool) -> dict:
        if not noise:
            params = replace(params, shot_noise=0.0, read_noise=0.0)
        config = SynthConfig(method=method, bit_depth=8 if noise else 0)
        stack, gt = render_sample(rgb, depth, params, config=config, generator=g)
        return {"frames": stack.frames, "focus_distances_m": stack.focus_distances_m.float(), "depth": gt}

    # --- the Source protocol
    def __len__(self) -> int:
        return self.options.eval_items if self.scenes is None else len(self.scenes)

    def item(self, index: int) -> dict:
        if index not in self._items:
            self._items[index] = self._render_item(index)
        return dict(self._items[index])

    def _render_item(self, index: int) -> dict:
        o, size = self.options, self.options.eval_size
        if self.scenes is None:
            rgb, depth = self._procedural(sample_generator(_EVAL_STREAM, index), size * 3 // 4, size)
            name = f"procedural_{index:04d}"
        else:
            rgb, depth = self._scene(index)
            h, w = rgb.shape[-2:]
            if max(h, w) > size:
                rgb, depth = _fit(rgb, depth, _scaled(h, w, size / max(h, w)))
            name = self.scenes[index].name
        camera = Camera(focal_length_mm=o.eval_focal_length_mm, f_number=o.eval_f_number,
                        pixel_pitch_um=pixel_pitch_um(o.eval_sensor_width_mm, rgb.shape[-1]))
        params = fixed_params(camera, parse_schedule(o.eval_schedule), depth, o.eval_frames,
                              shot_noise=o.eval_shot_noise, read_noise=o.eval_read_noise)
        method = "gather" if o.render_method == "gather" else "layered"
        item = self._render(rgb, depth, params, sample_generator(_EVAL_STREAM, index, 1), method=method, noise=True)
        return {**item, "name": name, "camera": camera}

    def draw(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None) -> dict:
        """A noise-free float training stack of ``n_frames`` (default 5) frames, ``size`` px, at a random virtual
        width: ``prepare`` rendered on the CPU without augmentation (no noise, float frames)."""
        return render_one(with_noise(self.prepare(g, size, n_frames), g))

    def prepare(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None) -> dict:
        """The CPU half of a training sample (``data.prepared``): ``rgb`` (3, H, W) and ``depth`` (1, H, W)
        cropped and flipped, the ``params`` left to render (colour gains, optics, PSF, exposure; crop and flip
        done) and the render ``method`` (drawn per sample when ``render_method`` is ``mixed``)."""
        params, rgb, depth = self.draw_params(g, size, n_frames)
        method = self.options.render_method
        if method == "mixed":
            method = "gather" if bool(torch.rand((), generator=g) < 0.3) else "layered"
        rgb, depth = crop_flip(rgb, depth, params)
        depth = torch.where(valid_depth(depth), depth, torch.zeros_like(depth))
        return {"rgb": rgb.contiguous(), "depth": depth.contiguous(), "params": replace(params, crop=None, flip=False),
                "method": method}

    def draw_params(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None):
        """``(SampleParams, rgb (3, h, w), depth (1, h, w))`` of a training sample, before rendering."""
        o = self.options
        ch, cw = size
        n = n_frames or 5
        ranges = replace(SamplingRanges(), frames=(n, n), f_number=o.f_number, focal_length_mm=o.focal_length_mm,
                         crop=None)
        width = _log_uniform(g, *o.image_width_px)
        if self.scenes is None:
            rgb, depth = self._procedural(g, ch, cw)
        else:
            rgb, depth, width = self._rgbd_crop(g, ch, cw, width)
        return sample_params(g, depth, ranges, image_width=width), rgb, depth

    def _rgbd_crop(self, g: torch.Generator, ch: int, cw: int, width: float):
        """A random scene resized to the virtual ``width`` (never below the window; never above its native size
        unless the window needs it), cropped where at least ``min_valid`` of the depth is known.

        Returns ``(rgb, depth, the width the scene was resized to)``.
        """
        for _ in range(_CROP_TRIES):
            rgb, depth = self._scene(pick(g, len(self.scenes)))
            h, w = rgb.shape[-2:]
            scale = min(width / w, 1.0)  # upsampling would blur the texture the focus cue lives on
            scale = max(scale, ch / h, cw / w)  # ... unless the scene is smaller than the window
            rgb, depth = _fit(rgb, depth, _scaled(h, w, scale))
            top, left = pick(g, rgb.shape[-2] - ch + 1), pick(g, rgb.shape[-1] - cw + 1)
            used = float(rgb.shape[-1])
            rgb, depth = rgb[:, top : top + ch, left : left + cw], depth[:, top : top + ch, left : left + cw]
            if float((depth > 0).float().mean()) >= self.options.min_valid:
                return rgb, depth, used
        raise InputError(f"{self.name}: no crop with {self.options.min_valid:.0%} valid depth in {_CROP_TRIES} tries")


def synthetic_source(kind: str, path: str | None, *, train: bool, **options) -> SyntheticSource:
    """Open a ``synth:DIR`` or ``procedural`` source (options: ``SyntheticOptions`` fields).

    Raises:
        ConfigError: unknown or ill-typed options.
        InputError: DIR holds no RGB-D scene, or none is left for training or evaluation.
    """
    o = build_dataclass(SyntheticOptions, options, where="synth_options")
    if o.render_method not in ("layered", "gather", "mixed") or o.holdout < 0 or o.eval_size < 8 \
            or o.eval_frames < 1:
        raise ConfigError("synth_options: render_method must be layered, gather or mixed, holdout >= 0, "
                          "eval_size >= 8, eval_frames >= 1")
    if not 0 < o.image_width_px[0] <= o.image_width_px[1]:
        raise ConfigError("synth_options: image_width_px must be (low, high) with 0 < low <= high")
    if kind == "procedural":
        textures = []
        if o.texture_dir:
            textures = pick_textures(_keep(find_rgbd(o.texture_dir), o.holdout, o.exclude, train=True))
        return SyntheticSource("procedural", None, o, train, textures)
    scenes = _keep(find_rgbd(path), o.holdout, o.exclude, train)
    if not scenes:
        raise InputError(f"{path}: no RGB-D scene left for {'training' if train else 'evaluation'} "
                         f"(holdout {o.holdout}, exclude {list(o.exclude)})")
    return SyntheticSource(f"synth:{path}", scenes, o, train)
