"""Which torch device a stage runs on (runtime.yaml `device`)."""
from __future__ import annotations

import torch

from twostream.errors import DeviceUnavailable


def resolve_device(device: str, key: str = "device") -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without CUDA is an error, not a fallback.

    `key` names the runtime.yaml key the value came from.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                f"{key} is 'cuda' but CUDA is not available on this machine "
                f"(torch.cuda.is_available() is False); set {key} to 'auto' or 'cpu' "
                f"in runtime.yaml")
        return torch.device("cuda")
    if device == "cpu":
        return torch.device("cpu")
    raise ValueError(f"{key}: unknown device {device!r}; one of auto, cpu, cuda")
