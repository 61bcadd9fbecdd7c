"""Device choice and device errors: every user-caused device problem is one ``FocalError`` line."""

from __future__ import annotations

import pytest
import torch

from focalcli.errors import ConfigError, DeviceError
from focalcli.runtime import device_errors, resolve_device


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("gpu0")


def test_cuda_index_that_does_not_exist(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("auto") == torch.device("cuda")
    with pytest.raises(DeviceError, match=r"'cuda:2' does not exist: this machine has 2 CUDA devices \(cuda:0 "):
        resolve_device("cuda:2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")


def test_out_of_memory_is_one_line_with_the_numbers():
    text = ("CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of 79.19 GiB of which 300.00 "
            "MiB is free.\nIncluding non-PyTorch memory, this process has 78.9 GiB memory in use.\nIf reserved ...")
    with pytest.raises(DeviceError) as e, device_errors("cuda:0"):
        raise torch.OutOfMemoryError(text)
    message = str(e.value)
    assert "\n" not in message and message.startswith("out of memory on cuda:0 (tried to allocate 1.50 GiB")
    assert "79.19 GiB" in message and e.value.exit_code == 4
    with pytest.raises(ValueError), device_errors("cpu"):  # anything else passes through
        raise ValueError("a bug")
