"""Registration of raw focal stacks: focus breathing, handheld shake and exposure drift."""

from focalcli.align.check import AlignCheck, check_alignment
from focalcli.align.register import MODELS, AlignConfig, FrameTransform, Registration, register_stack
from focalcli.align.stack import align_folder, align_stack
from focalcli.align.warp import coverage_mask, valid_box, warp_frame

__all__ = [
    "MODELS",
    "AlignCheck",
    "AlignConfig",
    "FrameTransform",
    "Registration",
    "align_folder",
    "align_stack",
    "check_alignment",
    "coverage_mask",
    "register_stack",
    "valid_box",
    "warp_frame",
]
