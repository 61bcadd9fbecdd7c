"""Synthetic focal stacks from RGB-D data and procedural scenes (``focal synth`` and on-the-fly training data)."""
