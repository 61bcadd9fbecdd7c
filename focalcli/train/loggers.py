"""Training loggers beside ``log.jsonl``: TensorBoard event files and Weights & Biases (``focal train --log``).

Each logger takes the records ``train()`` writes to ``log.jsonl`` (``log(record)``): a training record
``{"step", "loss", "lr", "samples_per_s", "time_s", "grad_norm"}`` becomes the scalars ``train/loss``, ``train/lr``,
...; a validation record ``{"step", "val": {SET: {METRIC: value}}, "val_abs_rel"}`` becomes ``val/SET/METRIC`` and
``val/abs_rel``.

TensorBoard files are written by focal itself (``EventFileWriter``: the TFRecord framing and the few protobuf
fields of a scalar summary), so ``--log tensorboard`` needs no extra package; ``tensorboard --logdir RUN`` reads
them. ``--log wandb`` needs the optional ``wandb`` package; ``WANDB_MODE=offline`` works without a network (``wandb
sync`` uploads later).
"""

from __future__ import annotations

import json
import math
import os
import socket
import struct
import time
from pathlib import Path

from focalcli.errors import ConfigError

__all__ = ["BACKENDS", "EventFileWriter", "MultiLogger", "TensorBoardLogger", "WandbLogger", "make_logger",
           "read_event_scalars", "scalars"]

BACKENDS = ("tensorboard", "wandb")


def scalars(record: dict) -> dict[str, float]:
    """A ``log.jsonl`` record as flat ``{tag: value}`` scalars (see the module docstring)."""
    out: dict[str, float] = {}
    if "val" in record:
        for name, metrics in record["val"].items():
            for key, value in metrics.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    out[f"val/{name}/{key}"] = float(value)
        if "val_abs_rel" in record:
            out["val/abs_rel"] = float(record["val_abs_rel"])
        return out
    for key, value in record.items():
        if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
            out[f"train/{key}"] = float(value)
    return out


# ---------------------------------------------------------------------------------------------------- TensorBoard


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1  # Castagnoli polynomial, reflected
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant (mod 2^32)."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64 as protobuf encodes it
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None,
           values: dict[str, float] | None = None) -> bytes:
    """An ``Event`` protobuf: wall_time (1, double), step (2, int64), file_version (3) or summary (5)."""
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3 | 0) + _varint(step)
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if values:
        summary = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", value))
            for tag, value in values.items())  # Summary.value: Value{tag (1), simple_value (2, float)}
        msg += _field_bytes(5, summary)
    return msg


class EventFileWriter:
    """Appends scalar summaries to a TensorBoard event file ``events.out.tfevents.TIME.HOST`` in ``folder``."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
        self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        self._write(_event(time.time(), 0, file_version="brain.Event:2"))

    def _write(self, data: bytes) -> None:
        header = struct.pack("<Q", len(data))
        self._file.write(header + struct.pack("<I", _masked_crc(header)) + data + struct.pack("<I", _masked_crc(data)))

    def add_scalars(self, step: int, values: dict[str, float]) -> None:
        values = {k: v for k, v in values.items() if math.isfinite(v)}
        if values:
            self._write(_event(time.time(), step, values=values))
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_event_scalars(path: str | os.PathLike) -> list[tuple[int, str, float]]:
    """``(step, tag, value)`` of every scalar in an event file (checks both CRCs of every record).

    Raises:
        ValueError: a damaged record.
    """
    data = Path(path).read_bytes()
    out, pos = [], 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        if struct.unpack("<I", data[pos + 8:pos + 12])[0] != _masked_crc(header):
            raise ValueError(f"{path}: bad length CRC at byte {pos}")
        body = data[pos + 12:pos + 12 + length]
        if struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] != _masked_crc(body):
            raise ValueError(f"{path}: bad data CRC at byte {pos}")
        pos += 16 + length
        fields = _parse(body)
        step = fields.get(2, [0])[0]
        for summary in fields.get(5, []):
            for value in _parse(summary).get(1, []):
                v = _parse(value)
                out.append((step, v[1][0].decode(), struct.unpack("<f", v[2][0])[0]))
    return out


def _parse(msg: bytes) -> dict[int, list]:
    """A protobuf message as ``{field: [values]}`` (varints as ints, fixed32/64 and bytes as bytes)."""
    fields: dict[int, list] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            b = msg[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while pos < len(msg):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value, pos = msg[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = msg[pos:pos + 4], pos + 4
        elif wire == 2:
            n = varint()
            value, pos = msg[pos:pos + n], pos + n
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


class TensorBoardLogger:
    """``log(record)`` -> scalars in an event file in the run folder."""

    def __init__(self, run_dir: str | os.PathLike, config: dict | None = None):
        del config  # scalars only
        self.writer = EventFileWriter(run_dir)

    def log(self, record: dict) -> None:
        self.writer.add_scalars(int(record.get("step", 0)), scalars(record))

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """``log(record)`` -> ``wandb.log`` (the run is stored in the run folder; ``WANDB_MODE=offline`` needs no
    network).

    Raises:
        ConfigError: the ``wandb`` package is not installed.
    """

    def __init__(self, run_dir: str | os.PathLike, config: dict | None = None):
        try:
            import wandb
        except ImportError:
            raise ConfigError("--log wandb needs the wandb package: pip install wandb (WANDB_MODE=offline works "
                              "without a network)") from None
        self.wandb = wandb
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "focal"), dir=str(run_dir),
                              name=Path(run_dir).name, config=json.loads(json.dumps(config or {}, default=str)))

    def log(self, record: dict) -> None:
        self.run.log(scalars(record), step=int(record.get("step", 0)))

    def close(self) -> None:
        self.run.finish()


class MultiLogger:
    """Several loggers as one."""

    def __init__(self, loggers: list):
        self.loggers = loggers

    def log(self, record: dict) -> None:
        for logger in self.loggers:
            logger.log(record)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def make_logger(backends: list[str] | tuple[str, ...], run_dir: str | os.PathLike, config: dict | None = None
                ) -> MultiLogger:
    """The loggers named in ``backends`` (``BACKENDS``), writing into ``run_dir`` (which must exist).

    Raises:
        ConfigError: an unknown backend, or one whose package is missing.
    """
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"unknown logger {unknown[0]!r}; use one of {', '.join(BACKENDS)}")
    classes = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger}
    return MultiLogger([classes[b](run_dir, config) for b in dict.fromkeys(backends)])

