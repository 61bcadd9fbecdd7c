"""Training FocDepthFormer: data, losses, schedule, checkpoints and the loop (``focal train``)."""
