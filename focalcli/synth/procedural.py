"""Procedural RGB-D scenes: "dead leaves" layouts of textured shapes at random depths.

Shapes (disks, ellipses, rectangles, triangles) with a power-law size distribution (as in the dead-leaves model,
density ~ r^-3) are stacked far to near over a textured background plane. Each shape is a slightly slanted plane
with its own texture, cut, scaled and rotated from a pool of real images (or from procedural noise when no pool is
given). Masks are binary, so colour and depth edges coincide exactly: sharp occlusion boundaries with known depth.
Everything is drawn from a passed ``torch.Generator``; the same seed gives the same scene.

The texture pool (``pick_textures``, ``load_textures``) is the same for ``focal synth --procedural`` and the
on-the-fly ``procedural`` training source: a few RGB-D scenes spread over the set, each kept up to
``TEXTURE_SIDE`` px.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from focalcli.io.rgbd import RGBDScene, load_rgbd

__all__ = ["TEXTURE_COUNT", "TEXTURE_SIDE", "DeadLeavesConfig", "dead_leaves", "load_textures", "noise_texture",
           "pick_textures"]

TEXTURE_COUNT = 12  # a texture pool holds at most this many images (enough variety; each is decoded once per process)
TEXTURE_SIDE = 640  # textures keep their native detail up to this long side (px): about the training resolution


@dataclass(frozen=True)
class DeadLeavesConfig:
    """Layout of a dead-leaves scene."""

    shapes: int = 40  # number of shapes over the background
    near_m: float = 0.5  # nearest shape distance (m)
    far_m: float = 8.0  # background / farthest distance (m)
    min_radius: float = 0.03  # smallest shape radius, fraction of the image diagonal
    max_radius: float = 0.3  # largest shape radius, fraction of the image diagonal
    slant: float = 0.15  # max relative change of inverse depth across a shape's plane
    texture_scale: tuple[float, float] = (0.6, 1.5)  # texture magnification range (log-uniform; > 1 softens detail)


def _rand(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=g, dtype=torch.float64)


def noise_texture(generator: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A colourful band-limited noise texture (3, H, W) in [0, 1], from a generator (used without real images).

    Octaves from a few cells across the image down to 2-pixel detail, with amplitude falling as 1/octave (a
    pink-ish spectrum): the fine octaves give the 1-2 px texture that real photographs have at full resolution.
    """
    out = torch.zeros(3, height, width, dtype=torch.float64)
    octaves = max(1, int(math.log2(max(2, min(height, width) // 2))))
    for octave in range(1, octaves + 1):
        cells = 2**octave
        low = torch.randn(1, 3, cells + 1, cells + 1, generator=generator, dtype=torch.float64)
        out += F.interpolate(low, size=(height, width), mode="bicubic", align_corners=True)[0] / octave
    base = _rand(generator, 3, 1, 1)
    contrast = 0.05 + 0.2 * _rand(generator)  # from faint to strong texture
    out = base + contrast * out / out.std().clamp_min(1e-6)
    return out.clamp(0, 1).float()


def pick_textures(scenes: Sequence[RGBDScene], count: int = TEXTURE_COUNT) -> list[RGBDScene]:
    """Up to ``count`` scenes spread evenly over ``scenes`` (in their order): the images a texture pool is cut from."""
    return list(scenes)[:: max(1, len(scenes) // count)][:count]


def load_textures(scenes: Sequence[RGBDScene]) -> list[torch.Tensor]:
    """The sRGB images (3, h, w) in [0, 1] of ``scenes``, shrunk (bilinear, antialiased) to at most
    ``TEXTURE_SIDE`` px on the long side; never enlarged."""
    out = []
    for scene in scenes:
        rgb = load_rgbd(scene).rgb
        h, w = rgb.shape[-2:]
        if max(h, w) > TEXTURE_SIDE:
            scale = TEXTURE_SIDE / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            rgb = F.interpolate(rgb[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        out.append(rgb.clamp(0, 1))
    return out


def _shape_mask(kind: int, xx: torch.Tensor, yy: torch.Tensor, cx: float, cy: float, r: float, angle: float,
                aspect: float) -> torch.Tensor:
    """Binary mask (H, W) of one shape centred at (cx, cy) with radius r (pixels)."""
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - cx) * c + (yy - cy) * s  # (H, W) coordinates in the shape's frame
    v = -(xx - cx) * s + (yy - cy) * c
    if kind == 0:  # disk
        return u * u + v * v <= r * r
    if kind == 1:  # ellipse
        return (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1
    if kind == 2:  # rectangle
        return (u.abs() <= r) & (v.abs() <= r * aspect)
    # triangle: three half-planes at 120 degrees
    inside = torch.ones_like(u, dtype=torch.bool)
    for k in range(3):
        a = 2 * math.pi * k / 3
        inside &= u * math.cos(a) + v * math.sin(a) <= r * 0.5
    return inside


def _textured(texture: torch.Tensor, g: torch.Generator, height: int, width: int, scale_range) -> torch.Tensor:
    """The texture scaled, rotated and shifted at random to cover (3, H, W) (reflected beyond its border)."""
    s = math.exp(math.log(scale_range[0]) + float(_rand(g)) * math.log(scale_range[1] / scale_range[0]))
    a = float(_rand(g)) * 2 * math.pi
    th, tw = texture.shape[-2:]
    # affine from output coords in [-1, 1] to texture coords in [-1, 1]: scale by the size ratio / s, then rotate
    sx, sy = width / tw / s, height / th / s
    theta = torch.tensor([[math.cos(a) * sx, -math.sin(a) * sy, float(_rand(g)) * 2 - 1],
                          [math.sin(a) * sx, math.cos(a) * sy, float(_rand(g)) * 2 - 1]], dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, 3, height, width], align_corners=False)  # (1, H, W, 2)
    return F.grid_sample(texture[None].float(), grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)[0]


def dead_leaves(
    generator: torch.Generator,
    height: int,
    width: int,
    textures: list[torch.Tensor] | None = None,
    config: DeadLeavesConfig = DeadLeavesConfig(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one dead-leaves RGB-D scene.

    Args:
        generator: the only source of randomness (CPU).
        height, width: image size.
        textures: sRGB images (3, h, w) in [0, 1] to cut textures from; None uses procedural noise.
        config: layout parameters.

    Returns:
        ``(rgb, depth)``: sRGB (3, H, W) float32 in [0, 1] and depth (1, H, W) float32 metres (all valid).
    """
    g = generator
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64) + 0.5,
                            torch.arange(width, dtype=torch.float64) + 0.5, indexing="ij")  # (H, W) pixel centres
    diag = math.hypot(height, width)

    def texture() -> torch.Tensor:
        if textures:
            t = textures[int(torch.randint(len(textures), (), generator=g))]
        else:
            t = noise_texture(g, max(64, height), max(64, width))
        return _textured(t, g, height, width, config.texture_scale)

    def plane(q0: float) -> torch.Tensor:
        gx, gy = (_rand(g, 2) * 2 - 1) * config.slant * q0  # inverse-depth change across the image
        q = q0 + gx * (xx / width - 0.5) + gy * (yy / height - 0.5)
        return 1.0 / q.clamp_min(1e-3)

    qn, qf = 1.0 / config.near_m, 1.0 / config.far_m
    rgb = texture()
    depth = plane(qf * 1.05).clamp(max=config.far_m * 1.2)  # background, slightly beyond the far shapes
    q = qf + _rand(g, config.shapes) * (qn - qf)  # uniform in diopters
    q = torch.sort(q).values  # far to near: later shapes occlude earlier ones
    rmin, rmax = config.min_radius * diag, config.max_radius * diag
    for qi in q.tolist():
        u = float(_rand(g))
        r = 1.0 / math.sqrt(1.0 / rmin**2 - u * (1.0 / rmin**2 - 1.0 / rmax**2))  # density ~ r^-3
        cx, cy = float(_rand(g)) * width, float(_rand(g)) * height
        kind = int(torch.randint(4, (), generator=g))
        angle, aspect = float(_rand(g)) * math.pi, 0.4 + 0.6 * float(_rand(g))
        mask = _shape_mask(kind, xx, yy, cx, cy, r, angle, aspect)  # (H, W)
        tex = texture()
        d = plane(qi)
        if not bool(mask.any()):
            continue
        rgb = torch.where(mask[None], tex, rgb)
        depth = torch.where(mask, d, depth)
    return rgb.clamp(0, 1).float(), depth[None].float()
