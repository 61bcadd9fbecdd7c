"""Rendering synthetic focal stacks from RGB-D data and procedural scenes: the engine that ``focal synth``
(``focalcli.synthesize``) and the on-the-fly data sources (``focalcli.data.synthetic``) share.

On the fly, in a data loader (CPU or GPU; the device follows the tensors)::

    g = torch.Generator().manual_seed(seed + worker_id)
    params = sample_params(g, depth, SamplingRanges(crop=(256, 256)))  # everything drawn is recorded in params
    stack, gt = render_sample(rgb, depth, params, generator=g)        # FocalStack + cropped/flipped GT depth
"""

from focalcli.synth.batch import batch_optics, render_batch
from focalcli.synth.procedural import DeadLeavesConfig, dead_leaves
from focalcli.synth.render import SynthConfig, crop_flip, render_frames, render_sample, render_stack
from focalcli.synth.sampling import SampleParams, SamplingRanges, fixed_params, parse_schedule, sample_params

__all__ = [
    "DeadLeavesConfig",
    "SampleParams",
    "SamplingRanges",
    "SynthConfig",
    "batch_optics",
    "crop_flip",
    "dead_leaves",
    "fixed_params",
    "parse_schedule",
    "render_batch",
    "render_frames",
    "render_sample",
    "render_stack",
    "sample_params",
]
