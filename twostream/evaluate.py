"""Test-set metrics, confusion data and the results table.

Metrics follow one schema for every model (metrics/<model>.json):
{"params", "best_epoch", "epochs", "train": {"accuracy", "loss"}, "val": {"accuracy", "loss"},
 "test": {"accuracy", "loss", "top5", "mean_class_accuracy"}}; accuracies are per sample
in 0..1, train and val are the best epoch's figures.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, top_k_accuracy_score

from twostream.params import FRAME_POSITIONS

# Rows of the results table: metrics file name -> (dataset, model), in the seed's order.
RESULT_ROWS = {
    "stanford40_frames": ("Stanford 40", "Frames"),
    "hmdb51_frames": ("HMDB51", "Frames"),
    "hmdb51_flow": ("HMDB51", "Optical flow"),
    "hmdb51_twostream": ("HMDB51", "Two-stream"),
}


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
    """The metrics file of one model: size, best epoch, its train/val figures, and test metrics."""
    best = checkpoint["history"][checkpoint["best_epoch"] - 1]
    return {
        "params": int(checkpoint["num_params"]),
        "best_epoch": int(checkpoint["best_epoch"]),
        "epochs": int(checkpoint["epochs"]),
        "train": {"accuracy": best["train_accuracy"], "loss": best["train_loss"]},
        "val": {"accuracy": best["val_accuracy"], "loss": best["val_loss"]},
        "test": scores(logits, labels),
    }


def confusion(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows = actual class, columns = predicted class."""
    return confusion_matrix(labels, predictions, labels=list(range(num_classes)))


def confusion_rows(labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """One row per test sample with class names: the data of DVC's `confusion` template."""
    names = np.asarray(classes)
    return pd.DataFrame({"actual": names[labels], "predicted": names[predictions]})


def _acc(record: Mapping[str, Any], split: str) -> str:
    return f"{record[split]['accuracy']:.3f}"


def results_markdown(records: Mapping[str, Mapping[str, Any]],
                     positions: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The seed's result table (and its frame-position table) filled from metrics records."""
    lines = ["# Results", "",
             "| Dataset | Model | Top-1 accuracy (train / val / test) | Top-1 loss train | Model parameters |",
             "|---|---|---|---|---|"]
    for name, (dataset, model) in RESULT_ROWS.items():
        if name not in records:
            continue
        r = records[name]
        lines.append(f"| {dataset} | {model} | {_acc(r, 'train')} / {_acc(r, 'val')} / {_acc(r, 'test')} "
                     f"| {r['train']['loss']:.3f} | {r['params']:,} |")
    lines += ["", "Best epoch / epochs: " + ", ".join(
        f"{RESULT_ROWS[n][1]} ({RESULT_ROWS[n][0]}) {records[n]['best_epoch']}/{records[n]['epochs']}"
        for n in RESULT_ROWS if n in records) + "."]
    lines += ["", "| Model | Test top-5 | Test mean class accuracy | Test loss |", "|---|---|---|---|"]
    for name, (dataset, model) in RESULT_ROWS.items():
        if name in records:
            t = records[name]["test"]
            lines.append(f"| {dataset} {model} | {t['top5']:.3f} | {t['mean_class_accuracy']:.3f} | {t['loss']:.3f} |")
    if positions:
        lines += ["", "## Frame position (HMDB51 frame model)", "",
                  "| Frame | Top-1 accuracy (train / val / test) |", "|---|---|"]
        for position in FRAME_POSITIONS:
            if position in positions:
                r = positions[position]
                label = position.replace("_", "-").capitalize()
                lines.append(f"| {label} | {_acc(r, 'train')} / {_acc(r, 'val')} / {_acc(r, 'test')} |")
    return "\n".join(lines) + "\n"
