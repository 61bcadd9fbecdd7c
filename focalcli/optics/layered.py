"""The occlusion-aware layered renderer, batched (see ``optics.defocus`` for the maths of both renderers).

**Batching.** A sample's result does not depend on the rest of its batch: each keeps its own layer count, layer
centres, kernel supports and PSF. The work is organised in *steps* instead of samples. Along the layers (far to
near) a frame's pyramid level falls and then rises again (the radius is V-shaped in inverse depth), so its
layers split into runs of equal level: far runs at decreasing levels, the valley (the run of lowest level), near
runs at increasing levels. A step is one (part, level) pair, e.g. "far runs at level 2"; every frame of every
sample has at most one run in a step, and visiting the steps in order (far from the top level down, valley, near
from level 1 up) composites every frame's runs in its own order. Within a step, the blurs of all runs of all
frames are one batch of FFTs, and compositing loops over the position in the run (at most L iterations), each
batched over the frames; a coarse run is composited at its level and upsampled once. Layer spectra are computed
once per (sample, layer, level). The plan (layer counts, levels, supports, index lists) is made on the host from
one small copy of per-sample numbers, so the device sees no data-dependent control flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from focalcli.optics.blur import (
    DIRECT_MAX_KERNEL,
    SamplePsfs,
    direct_blur,
    fft_size,
    image_spectra,
    kernel_spectra,
    spectral_blur,
    support,
)

__all__ = ["CHUNK_ELEMENTS", "layer_count", "render_layered"]


# Complex elements of one batch of layered blurs; a step's frames are split into chunks of about this size. On a GPU
# big batches keep the device busy (512 MiB in complex64). On a CPU the FFTs are memory-bound and many small
# batches that stay in cache are faster than one big one (measured: batched c2r twice as slow per transform), so
# each frame is its own chunk, as in a per-frame loop.
CHUNK_ELEMENTS = {"cuda": 1 << 26, "cpu": 0}


def layer_count(span_px: torch.Tensor, layers: int | None, max_layers: int, step_px: float) -> torch.Tensor:
    """Layer (or ladder) count per sample for a blur-radius span ``span_px`` (B,) float64: ``layers`` if given,
    else enough for steps of at most ``step_px`` of radius, capped at ``max_layers``."""
    if layers is not None:
        return torch.full(span_px.shape, max(1, int(layers)), dtype=torch.long)
    return (torch.ceil(span_px / step_px) + 1).clamp(1, max_layers).long()


def _levels(radii: torch.Tensor, min_coarse: float, top: int) -> torch.Tensor:
    """Pyramid level of each blur: the coarsest 2^k with radius / 2^k >= ``min_coarse`` (0 = always full size)."""
    if min_coarse <= 0:
        return torch.zeros_like(radii, dtype=torch.long)
    k = torch.floor(torch.log2((radii / min_coarse).clamp_min(1.0)))
    return k.clamp(0, top).long()


def _coarse_radius(radii: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """The radius to blur with at the blur's own level.

    At level k the layer is area-downsampled by s = 2^k, blurred, and bilinearly upsampled; the two resamplings add
    s^2/4 of variance per axis, which the coarse radius takes off (a disk of radius r has r^2/4).
    """
    scale = (2.0 ** level).to(radii.dtype)
    safe = torch.where(level > 0, radii**2 / scale**2 - 1.0, torch.ones_like(radii)).clamp_min(1e-12)  # no NaN grads
    return torch.where(level > 0, torch.sqrt(safe), radii)


def _downsample(x: torch.Tensor, s: int) -> torch.Tensor:
    """Area-average (U, C, H, W) by ``s`` after replicate-padding to a multiple of ``s``."""
    if s == 1:
        return x
    H, W = x.shape[-2:]
    x = F.pad(x, (0, -W % s, 0, -H % s), mode="replicate")
    return F.avg_pool2d(x, s)


@dataclass
class _Chunk:
    """Runs of ``frames`` ((Fc,), most layers first) at one step; their layer blurs in slot-major order: blur i is
    layer ``layer[i]`` of frame ``frame[i]``; the first ``prefix[s]`` frames have a slot ``s``. ``rows``: where
    the blurs' sources are, when they are consecutive rows of the level's sources (one frame), else None."""

    frames: torch.Tensor
    frame: torch.Tensor
    layer: torch.Tensor
    prefix: list[int]
    rows: tuple[int, int] | None = None
    sample: torch.Tensor | None = None  # (P,) the blur's sample
    source: torch.Tensor | None = None  # (P,) row of its layer among the level's sources
    radius: torch.Tensor | None = None  # (P,) index of its radius in the flat (B, N, L) radii
    own: torch.Tensor | None = None  # (P,) its sample's kernel support at the level
    frame0: int | None = None  # the frame of a one-frame chunk


@dataclass
class _Step:
    level: int
    chunks: list[_Chunk]


def _plan_steps(level: torch.Tensor, valid: torch.Tensor, top: int, cost: dict[int, int], budget: int) -> list[_Step]:
    """Steps (see the module docstring) from host levels (F, L) and valid layers (F, L); ``cost[k]``: complex
    elements of one blur at level k; ``budget``: complex elements per chunk."""
    Fn, L = level.shape
    big = top + 1
    lev = torch.where(valid, level, torch.full_like(level, big))
    low = lev.amin(dim=1, keepdim=True)  # (F, 1) the valley's level
    is_low = lev == low
    first = is_low.to(torch.int8).argmax(dim=1, keepdim=True)  # (F, 1) where the valley starts
    idx = torch.arange(L)[None]
    part = torch.where(idx < first, 0, torch.where(is_low, 1, 2))  # far, valley, near
    key = part * big + torch.where(part == 0, top - lev, lev)  # far: top level first; then valley; near: level 1 up
    key = torch.where(valid, key, torch.full_like(key, 3 * big))
    assert bool((key[:, 1:] >= key[:, :-1]).all()), "layer levels are not V-shaped"
    steps = []
    for value in torch.unique(key[valid]).tolist():
        k = top - value if value < big else value % big
        mask = key == value  # (F, L)
        count = mask.sum(dim=1)  # (F,)
        frames = torch.nonzero(count).squeeze(1)
        frames = frames[torch.sort(count[frames], descending=True, stable=True).indices]  # most layers first
        start = mask.to(torch.int8).argmax(dim=1)  # (F,) first layer of each frame's run
        frame_cost = count[frames] * cost[k]  # (Fs,)
        chunk_id = torch.div(torch.cumsum(frame_cost, 0) - frame_cost, max(1, budget), rounding_mode="floor")
        if budget <= 0:
            chunk_id = torch.arange(len(frames))
        chunks = []
        for c in torch.unique_consecutive(chunk_id).tolist():  # chunks of about ``budget`` (>= one frame)
            fs = frames[chunk_id == c]
            cs = count[fs]  # (Fc,) descending
            slots = torch.arange(int(cs[0]))[:, None] < cs[None]  # (S, Fc)
            s, j = torch.nonzero(slots, as_tuple=True)  # slot-major
            chunks.append(_Chunk(fs, fs[j], start[fs[j]] + s, slots.sum(dim=1).tolist()))
        steps.append(_Step(k, chunks))
    return steps


def render_layered(img, q, fq, gain, psfs: SamplePsfs, *, layers, max_layers, step_px, min_coarse):
    """The layered renderer (``render_defocus(method="layered")``); arguments as there, with ``psfs`` parsed.

    Shape:
        img (B, C, H, W), q (B, H, W) inverse depth, fq (B, N), gain (B, N) -> (B, N, C, H, W)
    """
    B, C, H, W = img.shape
    N = fq.shape[1]
    dev, dt = img.device, img.dtype
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (img, q, fq, gain))  # else: in place

    # --- the plan, on the host, from one copy of a few numbers per sample
    qd = q.detach()
    qmin_d, qmax_d = qd.amin(dim=(1, 2)), qd.amax(dim=(1, 2))  # (B,)
    host = torch.cat([qmin_d[:, None], qmax_d[:, None], fq.detach(), gain.detach()], dim=1).cpu()  # (B, 2 + 2N)
    qmin, qmax, fq_h, gain_h = host[:, 0], host[:, 1], host[:, 2 : 2 + N], host[:, 2 + N :]
    span = (qmax - qmin).double()  # (B,)
    spread_px = gain_h.double().amax(dim=1) * span / 2  # (B,) largest blur-radius difference across the scene
    n_layers = torch.where(span > 0, layer_count(spread_px, layers, max_layers, step_px), 1)
    L = int(n_layers.max())
    lidx = torch.arange(L)
    frac = lidx[None].double() / (n_layers[:, None] - 1).clamp_min(1)  # (B, L)
    centres = (qmin.double()[:, None] + span[:, None] * frac).to(dt)  # (B, L) far .. near
    centres = torch.where(lidx[None] < n_layers[:, None], centres, qmax[:, None])  # padding layers: unused
    radii_h = gain_h[:, :, None] * (fq_h[:, :, None] - centres[:, None, :]).abs() / 2  # (B, N, L) CoC radius, px
    top = max(0, int(math.log2(max(1, min(H, W) // 8))))  # keep coarse images at least ~8 px
    level_h = _levels(radii_h, min_coarse, top)  # (B, N, L)
    coarse_h = _coarse_radius(radii_h, level_h)  # (B, N, L)
    valid = (lidx[None, None] < n_layers[:, None, None]).expand(B, N, L)  # (B, N, L)

    # per level: the (sample, layer) pairs it blurs, each sample's own kernel support, the group's
    geometry = {}
    for k in torch.unique(level_h[valid]).tolist():
        at = valid & (level_h == k)  # (B, N, L)
        used = at.any(dim=1)  # (B, L)
        rmax = torch.where(at, coarse_h, torch.zeros_like(coarse_h)).amax(dim=(1, 2))  # (B,)
        own = torch.tensor([support(float(rmax[b]), psfs.reach(b)) if bool(used[b].any()) else 0 for b in range(B)])
        half = int(own.max())
        h, w = -(-H // 2**k), -(-W // 2**k)
        size = fft_size(h, w, half)
        geometry[k] = dict(pairs=torch.nonzero(used), lookup=torch.cumsum(used.reshape(-1), 0) - 1, own=own,
                           half=half, size=size, h=h, w=w, cost=(C + 1) * size[0] * (size[1] // 2 + 1),
                           same=bool((own[used.any(dim=1)] == half).all()))
    steps = _plan_steps(level_h.reshape(B * N, L), valid.reshape(B * N, L), top,
                        {k: g["cost"] for k, g in geometry.items()}, CHUNK_ELEMENTS.get(dev.type, 1 << 26))
    for step in steps:  # per blur: its source row, its radius, its sample and that sample's kernel support
        g = geometry[step.level]
        for c in step.chunks:
            c.sample = torch.div(c.frame, N, rounding_mode="floor")
            c.source = g["lookup"][c.sample * L + c.layer]
            c.radius = c.frame * L + c.layer
            c.own = g["own"][c.sample]  # (masking is skipped where every sample's support is the group's)
            if len(c.frames) == 1:  # one frame's run reads consecutive source rows: a slice, not a gather
                c.rows = (int(c.source[0]), int(c.source[0]) + len(c.source))
                c.frame0 = int(c.frames[0])
    last_use = {s.level: i for i, s in enumerate(steps)}
    # every index list goes to the device in one copy
    slots = [(g, "pairs") for g in geometry.values()]
    slots += [(c, key) for s in steps for c in s.chunks for key in ("frames", "source", "radius", "sample", "own")]
    moved = _to_device([level_h] + [getattr(o, k) if isinstance(o, _Chunk) else o[k] for o, k in slots], dev)
    level_d = moved[0]
    for (o, key), x in zip(slots, moved[1:], strict=True):
        if isinstance(o, _Chunk):
            setattr(o, key, x)
        else:
            o[key] = x

    # --- on the device
    tables = psfs.tables(dev, dt)
    centres_d = centres.to(dev)
    radii = gain[:, :, None] * (fq[:, :, None] - centres_d[:, None, :]).abs() / 2  # (B, N, L) in the graph
    coarse = _coarse_radius(radii, level_d).reshape(-1)  # (B*N*L,)
    nl = n_layers.to(dev, dt)  # (B,)
    spread = qmax_d - qmin_d
    scale = torch.where(nl > 1, (nl - 1) / torch.where(spread > 0, spread, torch.ones_like(spread)), 0.0)  # (B,)
    t = (q - qmin_d[:, None, None]) * scale[:, None, None]  # (B, H, W) continuous layer index

    alpha = (1.0 - (t[:, None] - lidx.to(dev, dt)[None, :, None, None]).abs()).clamp_min(0.0)  # (B, L, H, W)
    rgba = torch.cat([img[:, None] * alpha[:, :, None], alpha[:, :, None]], dim=2)  # (B, L, C+1, H, W) premult.
    rgba = rgba.view(B * L, C + 1, H, W)

    def source(k: int) -> torch.Tensor:
        """Spectra (or padded images) of the layers blurred at level k, (U, C+1, ...)."""
        g = geometry[k]
        b_u, l_u = g["pairs"].unbind(1)  # (U,)
        src = _downsample(rgba.index_select(0, b_u * L + l_u), 2**k)  # (U, C+1, h, w)
        if 2 * g["half"] + 1 <= DIRECT_MAX_KERNEL:
            return F.pad(src, (g["half"],) * 4, mode="replicate")
        return image_spectra(src, g["half"], g["size"])

    acc = img.new_zeros(B * N, C + 1, H, W)  # composites, frame f = b * N + n
    cache: dict[int, torch.Tensor] = {}
    for i, step in enumerate(steps):
        k, g = step.level, geometry[step.level]
        if k not in cache:
            cache[k] = source(k)
        for chunk in step.chunks:
            own = None if g["same"] else chunk.own
            kernels = SamplePsfs.bank(tables, coarse[chunk.radius], g["half"], chunk.sample, own)  # (P, K, K)
            if chunk.rows is None:
                src = cache[k].index_select(0, chunk.source)
            else:
                src = cache[k][chunk.rows[0] : chunk.rows[1]]
            if 2 * g["half"] + 1 <= DIRECT_MAX_KERNEL:
                blurred = direct_blur(src, kernels)  # (P, C+1, h, w)
            else:
                blurred = spectral_blur(src, kernel_spectra(kernels, g["size"]), g["size"], g["half"], g["h"], g["w"],
                                        inplace=not grad and chunk.rows is None)  # (P, C+1, h, w)
            frames = chunk.frames
            view = chunk.frame0 is not None and not grad  # one frame, no autograd: work on acc's row in place
            current = acc[chunk.frame0 : chunk.frame0 + 1] if view else acc.index_select(0, frames)  # (Fc, C+1, H, W)
            target = current if k == 0 else blurred.new_zeros(len(frames), C + 1, g["h"], g["w"])
            offset = 0
            for n in chunk.prefix:  # slot s of the first n frames: their runs' layers far to near
                target = _over(blurred[offset : offset + n], target, C, grad)
                offset += n
            if k > 0:  # a coarse run is composited at its level and upsampled once
                up = F.interpolate(target, size=(g["h"] * 2**k, g["w"] * 2**k), mode="bilinear",
                                   align_corners=False)[..., :H, :W]  # (Fc, C+1, H, W)
                target = _over(up, current, C, grad)
            if not view:
                acc = acc.index_copy(0, frames, target) if grad else acc.index_copy_(0, frames, target)
        if last_use[k] == i:
            del cache[k]
    out = acc[:, :C] / acc[:, C:].clamp_min(1e-6)  # (B*N, C, H, W)
    return out.view(B, N, C, H, W)


def _to_device(tensors: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Host long tensors -> views of one device tensor (a single copy)."""
    flat = torch.cat([t.reshape(-1).long() for t in tensors]).to(device)
    out, a = [], 0
    for t in tensors:
        out.append(flat[a : a + t.numel()].view(t.shape))
        a += t.numel()
    return out


def _over(layer: torch.Tensor, acc: torch.Tensor, C: int, grad: bool) -> torch.Tensor:
    """``layer`` (n, C+1, h, w), premultiplied, "over" the first n rows of ``acc`` (m >= n, C+1, h, w)."""
    n = layer.shape[0]
    if grad:
        head = layer + (1.0 - layer[:, C:]) * acc[:n]
        return head if n == acc.shape[0] else torch.cat([head, acc[n:]])
    head = acc[:n]
    head.addcmul_(layer[:, C:], head, value=-1.0).add_(layer)  # the same arithmetic in place
    return acc
