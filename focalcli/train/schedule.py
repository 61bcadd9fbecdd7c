"""Learning-rate schedule: linear warm-up, then cosine decay to a floor. Pure arithmetic, no state."""

from __future__ import annotations

import math

__all__ = ["lr_at"]


def lr_at(step: int, *, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Learning rate of optimiser step ``step`` (0-based).

    Warm-up: ``base_lr * (step + 1) / warmup_steps`` for ``step < warmup_steps``. Then cosine from ``base_lr`` at
    ``warmup_steps`` to ``min_lr`` at ``total_steps``, and ``min_lr`` after that.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
