"""On-the-fly synthetic focal stacks, rendered inside the data loader with ``focalcli.synth``.

- ``synth:DIR``: the RGB-D scenes under DIR (``focalcli.io.rgbd.find_rgbd``). Every ``holdout``-th scene (in name
  order, starting with the first) is held out: never drawn for training, and the evaluation set is made of them.
- ``procedural``: dead-leaves scenes (``focalcli.synth.procedural``), textured with images of ``texture_dir`` when
  given, else procedural noise. Training and evaluation scenes come from unrelated seed streams.

Training samples draw camera, focus schedule, PSF, noise, exposure, colour gains, crop, flip and (for RGB-D) a
random downscale from the passed generator (``synth.sampling.sample_params``), with the stack length fixed by the
step. Evaluation items are deterministic: the scene's centre ``eval_size`` square (RGB-D downscaled first so the
short side is ``eval_size``), rendered at ``eval_f_number`` with the scene-agnostic schedule ``eval_schedule``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from focalcli.config import build_dataclass
from focalcli.errors import ConfigError, InputError
from focalcli.io.stack import Camera
from focalcli.optics.thinlens import MIN_F_NUMBER
from focalcli.train.data.base import pick, sample_generator

__all__ = ["SyntheticOptions", "synthetic_source"]

_EVAL_STREAM = 0x5EED_E7A1  # seed key of procedural evaluation scenes (training uses the run's seed)
_CROP_TRIES = 20  # RGB-D crops drawn before giving up on finding enough valid depth


@dataclass(frozen=True)
class SyntheticOptions:
    """Options of the synthetic sources (``synth_options`` in the training config)."""

    holdout: int = 5  # synth:DIR holds out every K-th scene for evaluation (0 = none: evaluate on all)
    min_valid: float = 0.2  # synth:DIR training crops need at least this fraction of valid depth (redrawn if not)
    texture_dir: str = ""  # procedural: texture images are cut from the RGB-D scenes here ("" = noise)
    shapes: int = 40  # procedural: shapes per scene
    f_number: tuple[float, float] = (1.4, 8.0)  # training: f-number range (log-uniform)
    focal_length_mm: tuple[float, float] = (24.0, 85.0)  # training: focal length range (log-uniform)
    render_method: str = "layered"  # layered (occlusion-aware) or gather
    eval_items: int = 16  # procedural: number of evaluation scenes
    eval_size: int = 256  # evaluation items are eval_size x eval_size
    eval_frames: int = 5  # evaluation stack length
    eval_f_number: float = 2.0  # evaluation aperture
    eval_focal_length_mm: float = 50.0  # evaluation focal length
    eval_sensor_width_mm: float = 36.0  # evaluation sensor width (pixel pitch = width / eval_size)
    eval_schedule: str = "uniform:0.5,8"  # evaluation focus schedule (synth.sampling.parse_schedule), scene-agnostic

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


def _fit(rgb: torch.Tensor, depth: torch.Tensor, short: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize so the short side is ``short`` px: bilinear colour (antialiased), nearest depth (holes stay 0)."""
    h, w = rgb.shape[-2:]
    s = short / min(h, w)
    if abs(s - 1) < 1e-6:
        return rgb, depth
    size = (max(short, round(h * s)), max(short, round(w * s)))
    rgb = F.interpolate(rgb[None], size=size, mode="bilinear", antialias=s < 1, align_corners=False)[0]
    depth = F.interpolate(depth[None], size=size, mode="nearest")[0]
    return rgb.clamp(0, 1), depth


def _centre(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


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
    def _scene(self, index: int, short: int) -> tuple[torch.Tensor, torch.Tensor]:
        from focalcli.io.rgbd import load_rgbd

        scene = self.scenes[index]
        if scene.name not in self._cache:  # decoded once per process, kept at a bounded size
            s = load_rgbd(scene)
            if not bool((s.depth > 0).any()):
                raise InputError(f"{scene.name}: no valid depth")
            rgb, depth = s.rgb, s.depth
            if min(rgb.shape[-2:]) > short:
                rgb, depth = _fit(rgb, depth, short)
            self._cache[scene.name] = (rgb, depth)
        return self._cache[scene.name]

    def _texture_pool(self) -> list[torch.Tensor] | None:
        if self._textures is None:
            self._textures = [self._scene_rgb(s) for s in self._texture_scenes]
        return self._textures or None

    @staticmethod
    def _scene_rgb(scene) -> torch.Tensor:
        from focalcli.io.rgbd import load_rgbd

        rgb = load_rgbd(scene).rgb
        return _fit(rgb, torch.zeros(1, *rgb.shape[-2:]), 256)[0] if min(rgb.shape[-2:]) > 256 else rgb

    def _procedural(self, g: torch.Generator, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        from focalcli.synth.procedural import DeadLeavesConfig, dead_leaves

        return dead_leaves(g, h, w, self._texture_pool(), DeadLeavesConfig(shapes=self.options.shapes))

    def _render(self, rgb, depth, params, g) -> dict:
        from focalcli.synth.render import SynthConfig, render_sample

        stack, gt = render_sample(rgb, depth, params, config=SynthConfig(method=self.options.render_method),
                                  generator=g)
        return {"frames": stack.frames, "focus_distances_m": stack.focus_distances_m.float(), "depth": gt}

    # --- the Source protocol
    def __len__(self) -> int:
        return self.options.eval_items if self.scenes is None else len(self.scenes)

    def item(self, index: int) -> dict:
        if index not in self._items:
            self._items[index] = self._render_item(index)
        return dict(self._items[index])

    def _render_item(self, index: int) -> dict:
        from focalcli.optics.thinlens import pixel_pitch_um
        from focalcli.synth.sampling import fixed_params, parse_schedule

        o, size = self.options, self.options.eval_size
        if self.scenes is None:
            rgb, depth = self._procedural(sample_generator(_EVAL_STREAM, index), size, size)
            name = f"procedural_{index:04d}"
        else:
            rgb, depth = self._scene(index, max(size, 3 * size))
            rgb, depth = _fit(rgb, depth, size)
            rgb, depth = _centre(rgb, size), _centre(depth, size)
            name = self.scenes[index].name
        camera = Camera(focal_length_mm=o.eval_focal_length_mm, f_number=o.eval_f_number,
                        pixel_pitch_um=pixel_pitch_um(o.eval_sensor_width_mm, size))
        params = fixed_params(camera, parse_schedule(o.eval_schedule), depth, o.eval_frames)
        return {**self._render(rgb, depth, params, sample_generator(_EVAL_STREAM, index, 1)), "name": name}

    def draw(self, g: torch.Generator, size: tuple[int, int], n_frames: int | None) -> dict:
        from focalcli.synth.sampling import SamplingRanges, sample_params

        ch, cw = size
        n = n_frames or 5
        ranges = replace(SamplingRanges(), frames=(n, n), f_number=self.options.f_number,
                         focal_length_mm=self.options.focal_length_mm, crop=None)
        if self.scenes is None:
            rgb, depth = self._procedural(g, ch, cw)
        else:
            rgb, depth = self._rgbd_crop(g, ch, cw)
        return self._render(rgb, depth, sample_params(g, depth, ranges), g)

    def _rgbd_crop(self, g: torch.Generator, ch: int, cw: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random scene at a random scale, cropped where at least ``min_valid`` of the depth is known."""
        for _ in range(_CROP_TRIES):
            rgb, depth = self._scene(pick(g, len(self.scenes)), 3 * max(ch, cw))
            lo = max(ch, cw) * max(1.0, max(ch, cw) / min(rgb.shape[-2:]))  # never below the crop
            hi = max(lo, min(rgb.shape[-2:]))
            short = round(lo + (hi - lo) * float(torch.rand((), generator=g)))  # random scale
            rgb, depth = _fit(rgb, depth, max(short, ch, cw))
            top, left = pick(g, rgb.shape[-2] - ch + 1), pick(g, rgb.shape[-1] - cw + 1)
            rgb, depth = rgb[:, top : top + ch, left : left + cw], depth[:, top : top + ch, left : left + cw]
            if float((depth > 0).float().mean()) >= self.options.min_valid:
                return rgb, depth
        raise InputError(f"{self.name}: no crop with {self.options.min_valid:.0%} valid depth in {_CROP_TRIES} tries")


def synthetic_source(kind: str, path: str | None, *, train: bool, **options) -> SyntheticSource:
    """Open a ``synth:DIR`` or ``procedural`` source (options: ``SyntheticOptions`` fields).

    Raises:
        ConfigError: unknown or ill-typed options.
        InputError: DIR holds no RGB-D scene, or none is left for training or evaluation.
    """
    from focalcli.io.rgbd import find_rgbd

    o = build_dataclass(SyntheticOptions, options, where="synth_options")
    if o.render_method not in ("layered", "gather") or o.holdout < 0 or o.eval_size < 8 or o.eval_frames < 1:
        raise ConfigError("synth_options: render_method must be layered or gather, holdout >= 0, eval_size >= 8, "
                          "eval_frames >= 1")
    if kind == "procedural":
        textures = []
        if o.texture_dir:
            found = find_rgbd(o.texture_dir)
            textures = found[:: max(1, len(found) // 8)][:8]
        return SyntheticSource("procedural", None, o, train, textures)
    scenes = find_rgbd(path)
    if o.holdout:
        held = [s for i, s in enumerate(scenes) if i % o.holdout == 0]
        scenes = [s for i, s in enumerate(scenes) if i % o.holdout != 0] if train else held
    if not scenes:
        raise InputError(f"{path}: no RGB-D scene left for {'training' if train else 'evaluation'} "
                         f"(holdout {o.holdout})")
    return SyntheticSource(f"synth:{path}", scenes, o, train)
