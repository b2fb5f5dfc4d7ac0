"""Test-set metrics, confusion data and the results table.

One record per model, in memory and in results.md: {"params", "best_epoch", "epochs",
"train": {"accuracy", "loss"}, "val": {"accuracy", "loss"}, "test": {"accuracy", "loss",
"top5", "mean_class_accuracy"}}; accuracies are per sample in 0..1, train and val are the
best epoch's figures. On disk every figure is a DVC metric exactly once, laid out so that
`dvc exp show` starts with the headline numbers:

- metrics/accuracy.json: the test accuracy of every model (the seed's single-clip protocol);
- metrics/<model>.json: the rest of the record (size, best epoch, train/val, test loss,
  top-5, mean class accuracy);
- metrics/frame_positions.json: the test accuracy of the frame model trained at each other
  frame position (the one at `frames.position` is hmdb51_frames).
"""
from __future__ import annotations

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
from twostream.model_table import MODELS
from twostream.params import FRAME_POSITIONS, RuntimeParams
from twostream.train import make_loader, predict


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


def metrics_files(records: Mapping[str, Mapping[str, Any]], positions: Mapping[str, Mapping[str, Any]],
                  headline_position: str) -> dict[str, dict[str, Any]]:
    """The DVC metrics files (name -> content) holding every figure of `records` once."""
    files: dict[str, dict[str, Any]] = {"accuracy": {n: r["test"]["accuracy"] for n, r in records.items()}}
    for name, record in records.items():
        files[name] = {**record, "test": {k: v for k, v in record["test"].items() if k != "accuracy"}}
    files["frame_positions"] = {p: r["test"]["accuracy"] for p, r in positions.items() if p != headline_position}
    return files


def predict_dataset(model: nn.Module, dataset: Dataset, batch_size: int, runtime: RuntimeParams,
                    amp: bool, desc: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of a trained model on every sample of `dataset`, in order."""
    device = resolve_device(runtime.device)
    loader = make_loader(dataset, batch_size, runtime, shuffle=False, seed=0, device=device)
    return predict(model.to(device), loader, device, amp, desc=desc, progress=runtime.progress)


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
    rows = [m for m in MODELS if m.name in records]
    for m in rows:
        r = records[m.name]
        lines.append(f"| {m.dataset_title} | {m.title} | {_acc(r, 'train')} / {_acc(r, 'val')} / {_acc(r, 'test')} "
                     f"| {r['train']['loss']:.3f} | {r['params']:,} |")
    lines += ["", "Best epoch / epochs: " + ", ".join(
        f"{m.title} ({m.dataset_title}) {records[m.name]['best_epoch']}/{records[m.name]['epochs']}"
        for m in rows) + "."]
    lines += ["", "| Model | Test top-5 | Test mean class accuracy | Test loss |", "|---|---|---|---|"]
    for m in rows:
        t = records[m.name]["test"]
        lines.append(f"| {m.label} | {t['top5']:.3f} | {t['mean_class_accuracy']:.3f} | {t['loss']:.3f} |")
    if positions:
        lines += ["", "## Frame position (HMDB51 frame model)", "",
                  "| Frame | Top-1 accuracy (train / val / test) |", "|---|---|"]
        for position in FRAME_POSITIONS:
            if position in positions:
                r = positions[position]
                label = position.replace("_", "-").capitalize()
                lines.append(f"| {label} | {_acc(r, 'train')} / {_acc(r, 'val')} / {_acc(r, 'test')} |")
    return "\n".join(lines) + "\n"
