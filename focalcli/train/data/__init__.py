"""Training and evaluation data: real datasets (DDFF-12, FoD500), stack folders, on-the-fly synthesis, mixtures.

See ``base`` for the sample layout every source yields.
"""

from focalcli.train.data.augment import AugmentOptions, augment
from focalcli.train.data.base import Source, random_crop_flip, sample_generator
from focalcli.train.data.mixture import (
    DATA_KINDS,
    DataSpec,
    MixtureDataset,
    StepBatchSampler,
    build_source,
    parse_data_spec,
)

__all__ = [
    "DATA_KINDS",
    "AugmentOptions",
    "DataSpec",
    "MixtureDataset",
    "Source",
    "StepBatchSampler",
    "augment",
    "build_source",
    "parse_data_spec",
    "random_crop_flip",
    "sample_generator",
]
