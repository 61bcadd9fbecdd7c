"""Checks at the public boundary. They raise ``focalcli.errors`` (never ``assert``: ``python -O`` strips those)."""

from __future__ import annotations

import torch

from focalcli.errors import InputError, ShapeError

__all__ = ["check_finite", "check_range", "check_shape"]


def check_shape(x: torch.Tensor, dims: str, name: str = "input") -> dict[str, int]:
    """Check that ``x`` has the named dimensions and return their sizes.

    Args:
        x: the tensor.
        dims: space-separated names, e.g. ``"B N C H W"``; a digit fixes that size (``"B N 3 H W"``).
        name: how the tensor is called in the message.

    Returns:
        ``{"B": ..., "N": ..., ...}`` for the named (non-digit) dimensions.

    Raises:
        ShapeError: wrong rank or a fixed size differs.
    """
    names = dims.split()
    if not isinstance(x, torch.Tensor) or x.dim() != len(names):
        raise ShapeError(f"{name} has the wrong rank", expected=dims, actual=getattr(x, "shape", None))
    sizes: dict[str, int] = {}
    for n, s in zip(names, x.shape, strict=True):
        if n.isdigit():
            if int(n) != s:
                raise ShapeError(f"{name} has the wrong shape", expected=dims, actual=x.shape)
        elif sizes.setdefault(n, s) != s:
            raise ShapeError(f"{name}: dimension {n} differs between axes", expected=dims, actual=x.shape)
    return sizes


def check_range(x: torch.Tensor, low: float | None, high: float | None, name: str = "input") -> None:
    """Raise ``InputError`` unless every value of ``x`` lies in ``[low, high]`` (either bound may be None)."""
    if low is not None and bool((x < low).any()):
        raise InputError(f"{name} has values below {low} (min {float(x.min()):.4g})")
    if high is not None and bool((x > high).any()):
        raise InputError(f"{name} has values above {high} (max {float(x.max()):.4g})")


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise ``InputError`` if ``x`` holds NaN or infinity."""
    if not bool(torch.isfinite(x).all()):
        raise InputError(f"{name} holds NaN or infinite values")
