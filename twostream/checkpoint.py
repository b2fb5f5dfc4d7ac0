"""Model files (models/*.pt): save, load, rebuild, and what they record about the model.

A checkpoint is a dict: the `ModelSpec` (enough to rebuild the network without downloading
anything), the best epoch's weights, the dataset and class names it was trained on, the
image size, its parameter count, the training history and best epoch, the params the
training stage tracks, and `preprocess`: everything that turns a video or an image into the model's
input (`preprocess_meta`), so `twostream predict` cannot prepare an input otherwise than training did.
It is written with `torch.save` to an open file handle inside an
atomic write: torch stores the *file name* it is given inside the archive, so saving to the
temporary path would make identical weights give different bytes on every run.

A model file may come from a stranger (a shared DVC remote, `dvc pull --run-cache`), so it is
data, never code: it is read with `torch.load(weights_only=True)`, which unpickles only
tensors and plain containers and refuses anything else before it can run. A checkpoint
therefore holds only dicts with string keys, lists, tuples, strings, numbers, booleans, None
and tensors (`save_checkpoint` checks this, so every file it writes loads).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from twostream.errors import InputError, MissingInputError
from twostream.io import atomic_path
from twostream.models import ModelSpec, build_model, count_parameters
from twostream.transforms import IMAGENET_MEAN, IMAGENET_STD
from twostream.weights import refusal

REQUIRED = ("spec", "state_dict", "dataset", "classes", "image_size", "num_params", "history", "best_epoch",
            "epochs")


# what torch.load(weights_only=True) reads back: these exact types (np.float64 is a float subclass, and
# refused), tensors, and containers of them
PLAIN = (str, int, float, bool, type(None))


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Raise TypeError naming the entry when `value` holds anything but plain data and tensors."""
    if type(value) in (dict, OrderedDict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string")
            check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for i, item in enumerate(value):
            check_plain(item, f"{where}[{i}]")
    elif type(value) not in PLAIN and not isinstance(value, torch.Tensor):
        raise TypeError(f"{where}: {type(value).__module__}.{type(value).__qualname__} is not plain data "
                        f"(a model file holds only dicts, lists, strings, numbers, booleans, None and tensors)")


def checkpoint_meta(spec: ModelSpec, model: nn.Module, dataset: str, classes: tuple[str, ...],
                    image_size: int, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Everything a checkpoint records besides weights and history (`params`: the stage's own params)."""
    return {"spec": spec.as_dict(), "dataset": dataset, "classes": list(classes), "image_size": int(image_size),
            "num_params": count_parameters(model), "params": params, **extra}


# Version of the `preprocess` record; a model file without it, or of another version, is refused by predict.
PREPROCESS_VERSION = 1
# How an image or a video frame becomes a square (twostream.data.images.pad_resize).
PAD_RESIZE = "zero-pad to a centred square, resize: area interpolation down, bilinear up"


def preprocess_meta(source: str, image_size: int, position: str | None = None,
                    flow: dict[str, Any] | None = None) -> dict[str, Any]:
    """How a model's input is made, recorded in its checkpoint (key "preprocess").

    source: "image" (a still, Stanford 40) or "video" (HMDB51 clips: frames at `position` and/or flow
    stacks made with `flow`, the flow stage's `twostream.flow.flow_settings`). Every input image (RGB
    frame or flow image) is scaled to [0, 1] and normalised with `mean`/`std` per channel."""
    if source not in ("image", "video"):
        raise ValueError(f"source must be image or video, got {source!r}")
    return {"version": PREPROCESS_VERSION, "source": source, "image_size": int(image_size),
            "pad_resize": PAD_RESIZE, "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
            "frame_position": position, "flow": None if flow is None else dict(flow)}


def read_flow_settings(path: Path | str) -> dict[str, Any]:
    """The flow stage's record of its settings (flow.json next to its arrays)."""
    path = Path(path)
    try:
        settings = json.loads(path.read_text())
    except FileNotFoundError:
        raise MissingInputError(f"{path}: flow settings not found; re-run the flow stage (`dvc repro`)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the flow settings ({exc}); re-run the flow stage") from None
    if not isinstance(settings, dict) or "method" not in settings:
        raise InputError(f"{path}: not the flow stage's settings record; re-run the flow stage")
    return settings


def save_checkpoint(path: Path | str, model: nn.Module, meta: dict[str, Any], best_epoch: int,
                    history: list[dict[str, Any]]) -> None:
    """The model's weights (on CPU) with `meta`, its history and best epoch, written atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    checkpoint = {**meta, "state_dict": state, "best_epoch": int(best_epoch), "epochs": len(history),
                  "history": history}
    check_plain(checkpoint)  # a bug, not bad input: every model file must load with weights_only=True
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """A checkpoint dict; a missing, unreadable or foreign file names the stage to re-run. Read with
    `weights_only=True`: a file holding anything but tensors and plain data is refused before any of it runs."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: model not found; run the stage that trains it (`dvc repro`)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: torch raises several types
        reason = refusal(exc)
        if reason:
            raise InputError(f"{path}: refused: the model file holds more than weights and plain data ({reason}), "
                             f"which could run code if loaded; nothing of it was run: delete it and re-run the stage "
                             f"that trains it (or get the file from a source you trust)") from None
        raise InputError(f"{path}: cannot load the model file ({' '.join(str(exc).split())}); "
                         f"re-run the stage that trains it") from None
    missing = [k for k in REQUIRED if not isinstance(checkpoint, dict) or k not in checkpoint]
    if missing:
        raise InputError(f"{path}: not a twostream model file of this version (lacks {', '.join(missing)}); "
                         f"re-run the stage that trains it")
    return checkpoint


def rebuild(checkpoint: dict[str, Any]) -> nn.Module:
    """The network a checkpoint describes, with its weights (no pretrained download)."""
    spec = ModelSpec.from_dict({**checkpoint["spec"], "pretrained": False})
    model = build_model(spec)
    model.load_state_dict(checkpoint["state_dict"])
    return model


def load_model(path: Path | str) -> tuple[nn.Module, dict[str, Any]]:
    """(model, checkpoint) of a model file."""
    checkpoint = load_checkpoint(path)
    try:
        return rebuild(checkpoint), checkpoint
    except (RuntimeError, ValueError, TypeError) as exc:  # spec or weights that do not fit
        raise InputError(f"{path}: the weights do not fit the recorded model ({' '.join(str(exc).split())[:300]}); "
                         f"re-run the stage that trains it") from None


def spec_of(checkpoint: dict[str, Any]) -> ModelSpec:
    return ModelSpec.from_dict(checkpoint["spec"])
