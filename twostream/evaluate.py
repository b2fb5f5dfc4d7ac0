"""Test-set metrics, video-level and late-fusion scores, the metrics files and the per-video predictions.

One record per model, in memory: {"params", "best_epoch", "epochs", "train": {"accuracy",
"loss"}, "val": {"accuracy", "loss"}, "test": {"accuracy", "accuracy_ci95", "loss", "top5",
"mean_class_accuracy"}}; accuracies are per sample in 0..1, train and val are the best epoch's
figures. The late fusion is not trained: its record is {"test": {...}} only. `accuracy_ci95` is
the exact 95% binomial interval of the test accuracy (`stats.accuracy_interval`), [low, high].

Two test protocols. The seed's (the headline, comparable number): one frame and one flow stack
from the middle of each test video. Video-level: the mean softmax over K clips spread over the
video (`video_test.clips`), each clip a frame and a flow stack (`log_mean_softmax`). The late
fusion averages the softmax of the frame and the flow model the same way (`late_fusion`).

On disk every figure is a DVC metric exactly once, laid out so that `dvc exp show` starts with
the headline numbers:

- metrics/accuracy.json: the test accuracy of every model (the seed's single-clip protocol),
  then `video_accuracy`: the video-level test accuracy of every HMDB51 model;
- metrics/<model>.json: the rest of the record (size, best epoch, train/val, test loss,
  top-5, mean class accuracy), with the intervals of its test accuracies: `test.accuracy_ci95`
  and, for the HMDB51 models, `test.video_accuracy_ci95`;
- metrics/frame_positions.json: the test accuracy of the frame model trained at each other
  frame position (the one at `frames.position` is hmdb51_frames), and their intervals
  (`accuracy_ci95`).

The intervals are [low, high] pairs: DVC lists numbers and strings as metrics, not arrays, so
they add no column to `dvc exp show` (at most 60 figures) and are read from the files and the
results table. Comparing two runs is `twostream compare`'s
paired test on the per-video predictions (`prediction_rows`), not an overlap of two intervals.

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
from twostream.stats import accuracy_interval
from twostream.train import make_loader, place_model, predict


PROBABILITY_FORMAT = "%.6f"  # class probabilities in the prediction files: a fixed format, the same bytes


def scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Per-sample accuracy and its exact 95% interval, mean cross-entropy, top-5 accuracy and mean
    per-class accuracy."""
    num_classes = logits.shape[1]
    loss = F.cross_entropy(torch.from_numpy(logits).float(), torch.from_numpy(labels).long()).item()
    predictions = logits.argmax(1)
    correct = int((predictions == labels).sum())
    return {
        "accuracy": float((predictions == labels).mean()),
        "accuracy_ci95": list(accuracy_interval(correct, len(labels))),
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
                  headline_position: str, video: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The DVC metrics files (name -> content) holding every figure of `records` once, and the
    video-level scores (model -> `scores`): their accuracies in accuracy.json after the single-clip
    ones, their intervals in the model's file next to the single-clip one."""
    files: dict[str, dict[str, Any]] = {"accuracy": {n: r["test"]["accuracy"] for n, r in records.items()}}
    files["accuracy"]["video_accuracy"] = {n: s["accuracy"] for n, s in video.items()}
    for name, record in records.items():
        test = {k: v for k, v in record["test"].items() if k != "accuracy"}
        if name in video:
            test["video_accuracy_ci95"] = list(video[name]["accuracy_ci95"])
        files[name] = {**record, "test": test}
    others = {p: r for p, r in positions.items() if p != headline_position}
    files["frame_positions"] = {p: r["test"]["accuracy"] for p, r in others.items()}
    files["frame_positions"]["accuracy_ci95"] = {p: list(r["test"]["accuracy_ci95"]) for p, r in others.items()}
    return files


def prediction_rows(paths: Sequence[str], labels: np.ndarray, logits: np.ndarray,
                    classes: Sequence[str]) -> pd.DataFrame:
    """One row per test video (or image): its manifest path, true and predicted class, and the
    probability of every class (softmax of the scores; for a video the mean softmax of its clips).
    What `twostream compare` pairs between two runs; `actual`/`predicted` also feed DVC's confusion
    template."""
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape != (len(paths), len(classes)) or len(labels) != len(paths):
        raise ValueError(f"expected {len(paths)} x {len(classes)} scores and {len(paths)} labels, "
                         f"got {logits.shape} and {len(labels)}")
    names = np.asarray(classes)
    probabilities = F.softmax(torch.from_numpy(logits).double(), dim=1).numpy()
    frame = pd.DataFrame({"path": list(paths), "actual": names[labels], "predicted": names[logits.argmax(1)]})
    columns = pd.DataFrame(probabilities, columns=[probability_column(c) for c in classes])
    return pd.concat([frame, columns], axis=1)


def probability_column(class_name: str) -> str:
    """The prediction file's column of one class's probability."""
    return f"p_{class_name}"


def prediction_csv(rows: pd.DataFrame) -> str:
    """A prediction file's text: probabilities in `PROBABILITY_FORMAT`, "\n" line ends."""
    return rows.to_csv(index=False, float_format=PROBABILITY_FORMAT, lineterminator="\n")


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
