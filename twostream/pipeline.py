"""What the four training stages share: model files, rebuilding saved models, one training run.

Stage scripts assemble datasets and the model; `run_training` does the rest
(loaders, fit with DVCLive curves, checkpoint) the same way for every model.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
from dvclive import Live
from torch import nn
from torch.utils.data import Dataset

from twostream.classes import NUM_CLASSES
from twostream.device import resolve_device
from twostream.models import TwoStream, count_parameters, spatial_model, temporal_model
from twostream.params import Params, as_dict
from twostream.evaluate import metrics_record
from twostream.io import InputError
from twostream.train import FitResult, fit, load_checkpoint, make_loader, predict, save_checkpoint

log = logging.getLogger(__name__)

# stage -> model name (models/<name>.pt, metrics/<name>.json)
MODEL_NAMES = {"train_spatial": "stanford40_frames", "finetune": "hmdb51_frames",
               "train_flow": "hmdb51_flow", "train_fusion": "hmdb51_twostream"}


def model_from_checkpoint(checkpoint: dict[str, Any]) -> nn.Module:
    """Rebuild a saved model (architecture from its metadata) and load its weights."""
    kind = checkpoint["kind"]
    if kind == "spatial":
        model = spatial_model(NUM_CLASSES, pretrained=False)
        model.transform_input = checkpoint["transform_input"]
    elif kind == "temporal":
        model = temporal_model(NUM_CLASSES, pretrained=False)
    elif kind == "twostream":
        spatial = spatial_model(NUM_CLASSES, pretrained=False)
        spatial.transform_input = checkpoint["transform_input"]
        model = TwoStream(spatial, temporal_model(NUM_CLASSES, pretrained=False), NUM_CLASSES)
    else:
        raise InputError(f"unknown model kind {kind!r} in a model file")
    model.load_state_dict(checkpoint["state_dict"])
    return model


def load_model(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    checkpoint = load_checkpoint(path)
    return model_from_checkpoint(checkpoint), checkpoint


def model_meta(kind: str, model: nn.Module, dataset: str, classes: tuple[str, ...], params: Params,
               **extra: Any) -> dict[str, Any]:
    spatial = model.spatial if isinstance(model, TwoStream) else model
    return {"kind": kind, "dataset": dataset, "classes": list(classes), "image_size": params.image.size,
            "transform_input": bool(getattr(spatial, "transform_input", False)),
            "num_params": count_parameters(model), "params": as_dict(params), **extra}


def run_training(stage: str, model: nn.Module, train_set: Dataset, val_set: Dataset, params: Params,
                 out: Path, live_dir: Path | None, meta: dict[str, Any]) -> FitResult:
    """Train `model` with the stage's params, log curves to `live_dir` (if given), save the best epoch to `out`."""
    device = resolve_device(params.train.device, key="train.device")
    train_loader = make_loader(train_set, params.train, shuffle=True, seed=params.seed, device=device)
    val_loader = make_loader(val_set, params.train, shuffle=False, seed=params.seed, device=device)
    log.info("%s: %d parameters, %d train / %d val samples, device %s", stage, meta["num_params"],
             len(train_set), len(val_set), device)
    live_context = (contextlib.nullcontext() if live_dir is None
                    else Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None))
    with live_context as live:
        result = fit(model, train_loader, val_loader, params.stage(stage), params.train, device, live=live)
        best = result.best
        if live is not None:  # metrics.json holds the best epoch's figures, not the last epoch's
            live.summary = {"best_epoch": result.best_epoch, "epochs": len(result.history),
                            "train": {"accuracy": best.train_accuracy, "loss": best.train_loss},
                            "val": {"accuracy": best.val_accuracy, "loss": best.val_loss}}
    save_checkpoint(out, model.cpu(), meta, result)
    log.info("%s: best epoch %d/%d, val accuracy %.3f -> %s", stage, result.best_epoch, len(result.history),
             best.val_accuracy, out)
    return result



def evaluate_on_test(model: nn.Module, checkpoint: dict[str, Any], test_set: Dataset,
                     params: Params) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Metrics record (ARCHITECTURE schema) of a trained model on its test set, with logits and labels."""
    device = resolve_device(params.train.device, key="train.device")
    loader = make_loader(test_set, params.train, shuffle=False, seed=params.seed, device=device)
    logits, labels = predict(model.to(device), loader, device, params.train.amp, desc="test")
    return metrics_record(checkpoint, logits, labels), logits, labels
