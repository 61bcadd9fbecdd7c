"""Training and evaluation data: real datasets (DDFF-12, FoD500), stack folders, on-the-fly synthesis, mixtures.

See ``base`` for the sample layout every source yields.
"""

from focalcli.train.data.augment import AugmentOptions, augment, augment_prepared
from focalcli.train.data.base import Source, random_crop_flip, sample_generator
from focalcli.train.data.mixture import (
    DATA_KINDS,
    RENDER_MODES,
    DataSpec,
    MixtureDataset,
    StepBatchSampler,
    build_source,
    parse_data_spec,
)
from focalcli.train.data.prepared import collate_samples, is_prepared, render_prepared

__all__ = [
    "DATA_KINDS",
    "RENDER_MODES",
    "AugmentOptions",
    "DataSpec",
    "MixtureDataset",
    "Source",
    "StepBatchSampler",
    "augment",
    "augment_prepared",
    "build_source",
    "collate_samples",
    "is_prepared",
    "parse_data_spec",
    "random_crop_flip",
    "render_prepared",
    "sample_generator",
]
