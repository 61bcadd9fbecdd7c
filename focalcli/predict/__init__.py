"""Depth (and all-in-focus, confidence, point cloud) for a stack folder or a tree of stack folders, written to files.

``predict(stack, method=...)`` returns a ``DepthResult`` in memory; ``predict_to_files`` adds the output
contract: every output path is checked before any work starts, and the files of one stack appear together.

Before a method runs, ``align`` decides whether the frames are registered first (``"auto"``: a quick check of the
frame-to-frame scale and shift, ``focalcli.align.check``; ``"on"``; ``"off"``). Pixels that not every aligned frame
covers have no depth (NaN in memory, 0 in the files).

Outputs beside each depth file ``D.ext``: ``D.json`` (the sidecar: units, method and every resolved option, model
file and SHA-256, alignment, focal version: what made the numbers and how to read them) and, on request,
``D_preview.png`` (a colour map with a labelled colour bar), the all-in-focus image, the confidence map and a PLY
point cloud. Several depth files (``d.png`` and ``d.npy``) share one sidecar.

The package in three parts: ``run`` (alignment decision, ``predict``, ``predict_to_files``, ``fuse_to_file``),
``outputs`` (``PredictOutputs``: names, formats and the sidecar's records) and ``batch`` (``plan_batch``,
``predict_batch`` over a tree of stacks). Every name is importable from ``focalcli.predict`` as before.
"""

from focalcli.predict.batch import BatchPlan, BatchPlans, is_batch_input, plan_batch, predict_batch
from focalcli.predict.outputs import (
    AIF_SUFFIXES,
    CONFIDENCE_SUFFIXES,
    INVALID_NOTE,
    PLY_SUFFIXES,
    UNIT_NOTES,
    PredictOutputs,
    model_file_record,
)
from focalcli.predict.run import (
    ALIGN_MODES,
    METHODS,
    RANGE_NOTE_SHARE,
    UNCOVERED_MODES,
    align_for_prediction,
    fill_uncovered,
    fuse_to_file,
    predict,
    predict_to_files,
    range_notes,
)

__all__ = ["AIF_SUFFIXES", "ALIGN_MODES", "CONFIDENCE_SUFFIXES", "INVALID_NOTE", "METHODS", "PLY_SUFFIXES",
           "UNIT_NOTES", "BatchPlan", "BatchPlans", "PredictOutputs", "align_for_prediction", "fuse_to_file",
           "is_batch_input", "model_file_record", "plan_batch", "predict", "predict_batch", "predict_to_files",
           "RANGE_NOTE_SHARE", "UNCOVERED_MODES", "fill_uncovered", "range_notes"]
