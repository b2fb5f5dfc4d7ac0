"""Test-set metrics, video-level and late-fusion scores, and the metrics files.

One record per model, in memory: {"params", "best_epoch", "epochs", "train": {"accuracy",
"loss"}, "val": {"accuracy", "loss"}, "test": {"accuracy", "loss", "top5",
"mean_class_accuracy"}}; accuracies are per sample in 0..1, train and val are the best epoch's
figures. The late fusion is not trained: its record is {"test": {...}} only.

Two test protocols. The seed's (the headline, comparable number): one frame and one flow stack
from the middle of each test video. Video-level: the mean softmax over K clips spread over the
video (`video_test.clips`), each clip a frame and a flow stack (`log_mean_softmax`). The late
fusion averages the softmax of the frame and the flow model the same way (`late_fusion`).

On disk every figure is a DVC metric exactly once, laid out so that `dvc exp show` starts with
the headline numbers:

- metrics/accuracy.json: the test accuracy of every model (the seed's single-clip protocol),
  then `video_accuracy`: the video-level test accuracy of every HMDB51 model;
- metrics/<model>.json: the rest of the record (size, best epoch, train/val, test loss,
  top-5, mean class accuracy);
- metrics/frame_positions.json: the test accuracy of the frame model trained at each other
  frame position (the one at `frames.position` is hmdb51_frames).

The results table (metrics/results.md) is written from these files by `twostream.report`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, top_k_accuracy_score

from torch import nn
from torch.utils.data import Dataset

from twostream.device import resolve_device
from twostream.params import RuntimeParams
from twostream.train import make_loader, place_model, predict


def scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Per-sample accuracy, mean cross-entropy, top-5 accuracy and mean per-class accuracy."""
    num_classes = logits.shape[1]
    loss = F.cross_entropy(torch.from_numpy(logits).float(), torch.from_numpy(labels).long()).item()
    predictions = logits.argmax(1)
    return {
        "accuracy": float((predictions == labels).mean()),
        "loss": loss,
        "top5": float(top_k_accuracy_score(labels, logits, k=min(5, num_classes), labels=range(num_classes))),
        "mean_class_accuracy": float(balanced_accuracy_score(labels, predictions)),
    }


def metrics_record(checkpoint: Mapping[str, Any], logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The record of one model: size, best epoch, its train/val figures, and test metrics."""
    best = checkpoint["history"][checkpoint["best_epoch"] - 1]
    return {
        "params": int(checkpoint["num_params"]),
        "best_epoch": int(checkpoint["best_epoch"]),
        "epochs": int(checkpoint["epochs"]),
        "train": {"accuracy": best["train_accuracy"], "loss": best["train_loss"]},
        "val": {"accuracy": best["val_accuracy"], "loss": best["val_loss"]},
        "test": scores(logits, labels),
    }


def log_mean_softmax(logits: np.ndarray) -> np.ndarray:
    """(N, M, C) scores of M clips (or models) per sample -> (N, C): the log of their mean softmax.

    The mean of probabilities, neither of logits nor a majority vote: a clip that is sure of its
    class outweighs several that hesitate. Computed in float64 as logsumexp(log_softmax) - log M,
    so a probability that underflows float32 still gives a finite loss. The result is a valid set of
    logits (its softmax is the mean softmax), so `scores` takes it as it takes a model's output.
    """
    logits = np.asarray(logits)
    if logits.ndim != 3 or 0 in logits.shape:
        raise ValueError(f"expected (samples, clips or models, classes) scores, got shape {logits.shape}")
    log_p = F.log_softmax(torch.from_numpy(logits).double(), dim=-1)
    return (torch.logsumexp(log_p, dim=1) - math.log(logits.shape[1])).numpy()


def video_logits(clip_logits: np.ndarray, clips: int) -> np.ndarray:
    """(N * K, C) scores of K consecutive clips per video -> (N, C) video scores (`log_mean_softmax`)."""
    clip_logits = np.asarray(clip_logits)
    if clips < 1 or clip_logits.ndim != 2 or len(clip_logits) % clips:
        raise ValueError(f"expected (videos * {clips}, classes) clip scores, got shape {clip_logits.shape}")
    return log_mean_softmax(clip_logits.reshape(len(clip_logits) // clips, clips, clip_logits.shape[1]))


def late_fusion(*logits: np.ndarray) -> np.ndarray:
    """Late fusion of models scored on the same samples, (N, C) each: the log of their mean softmax.

    Applied per clip, then `video_logits` over a video's clips: every clip of every model weighs the same."""
    if len(logits) < 2 or len({np.shape(x) for x in logits}) != 1:
        raise ValueError(f"late fusion needs two or more score arrays of one shape, got {[np.shape(x) for x in logits]}")
    return log_mean_softmax(np.stack(logits, axis=1))


def metrics_files(records: Mapping[str, Mapping[str, Any]], positions: Mapping[str, Mapping[str, Any]],
                  headline_position: str, video_accuracy: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """The DVC metrics files (name -> content) holding every figure of `records` once, and the
    video-level accuracies (model -> accuracy) in accuracy.json after the single-clip ones."""
    files: dict[str, dict[str, Any]] = {"accuracy": {n: r["test"]["accuracy"] for n, r in records.items()}}
    files["accuracy"]["video_accuracy"] = dict(video_accuracy)
    for name, record in records.items():
        files[name] = {**record, "test": {k: v for k, v in record["test"].items() if k != "accuracy"}}
    files["frame_positions"] = {p: r["test"]["accuracy"] for p, r in positions.items() if p != headline_position}
    return files


def predict_dataset(model: nn.Module, dataset: Dataset, batch_size: int, runtime: RuntimeParams,
                    amp: bool, desc: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of a trained model on every sample of `dataset`, in order."""
    device = resolve_device(runtime.device)
    loader = make_loader(dataset, batch_size, runtime, shuffle=False, seed=0, device=device)
    return predict(place_model(model, device, runtime.channels_last), loader, device, amp, desc=desc,
                   progress=runtime.progress, channels_last=runtime.channels_last)


def confusion(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows = actual class, columns = predicted class."""
    return confusion_matrix(labels, predictions, labels=list(range(num_classes)))


def confusion_rows(labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """One row per test sample with class names: the data of DVC's `confusion` template."""
    names = np.asarray(classes)
    return pd.DataFrame({"actual": names[labels], "predicted": names[predictions]})
