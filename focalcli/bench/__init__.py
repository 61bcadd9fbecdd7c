"""Benchmarks: ``python -m focalcli.bench NAME``. Separate commands, never timed tests.

Each benchmark module exposes ``register(app)`` and prints its figures as a table (and ``--json``).
"""
