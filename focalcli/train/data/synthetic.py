"""On-the-fly synthetic focal stacks (RGB-D folders and procedural scenes), rendered inside the data loader."""

from __future__ import annotations

from focalcli.errors import ConfigError

__all__ = ["synthetic_source"]


def synthetic_source(kind: str, path: str | None, *, train: bool, **options):
    """Placeholder until the renderer (``focalcli.synth``) is merged."""
    raise ConfigError(f"--data {kind}: on-the-fly synthesis needs the renderer (focalcli.synth), not in this build")
