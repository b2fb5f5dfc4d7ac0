"""Pretrained torchvision weights, cached in TORCH_HOME, with a clear error when offline.

torchvision downloads weights on first use; on a machine without internet that is a
bare URLError traceback. Here a missing file is a message that names the file, the
URL and where to put it. There is never a silent fallback to random weights.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torchvision.models import WeightsEnum

from twostream.errors import WeightsUnavailable

log = logging.getLogger(__name__)


def weights_path(weights: WeightsEnum) -> Path:
    """Where torch.hub keeps (or will keep) the file of `weights`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def load_pretrained(weights: WeightsEnum) -> dict[str, Any]:
    """State dict of `weights` from the TORCH_HOME cache, downloading it if possible."""
    path = weights_path(weights)
    if not path.is_file():
        log.info("downloading %s to %s", weights, path)
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; hash mismatch a RuntimeError
        raise WeightsUnavailable(
            f"pretrained weights {weights} are not available: {path} "
            f"{'exists but could not be loaded' if path.is_file() else 'is missing'} "
            f"and downloading {weights.url} failed ({exc}). On a machine with internet run "
            f"`python -c \"import torchvision; torchvision.models.get_weight('{weights}').get_state_dict()\"` "
            f"or download the URL yourself, then copy the file to {path} "
            f"(the directory follows TORCH_HOME). The offline demo needs no weights: "
            f"model.pretrained: none and flow.method: dis in params.yaml."
        ) from exc
