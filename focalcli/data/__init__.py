"""Dataset sources for training and evaluation: DDFF-12, FoD500, stack folders, on-the-fly synthesis.

``build_source(parse_data_spec("KIND:PATH"), train=...)`` opens one; see ``base`` for the sample layout every source
yields. Training (``focalcli.train``) mixes and augments them; evaluation (``focalcli.evaluation``) scores methods on
their evaluation splits; ``focal synth --random`` draws its samples from the synthetic sources.
"""

from focalcli.data.base import Source, pick, random_crop_flip, sample_generator, subset_indices
from focalcli.data.prepared import collate_samples, is_prepared, render_one, render_prepared, with_noise
from focalcli.data.spec import DATA_KINDS, DataSpec, build_source, parse_data_spec

__all__ = [
    "DATA_KINDS",
    "DataSpec",
    "Source",
    "build_source",
    "collate_samples",
    "is_prepared",
    "parse_data_spec",
    "pick",
    "random_crop_flip",
    "render_one",
    "render_prepared",
    "sample_generator",
    "subset_indices",
    "with_noise",
]
