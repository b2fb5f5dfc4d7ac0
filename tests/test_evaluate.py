import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from twostream.evaluate import (confusion, confusion_rows, metrics_files, metrics_record, predict_dataset,
                                results_markdown, scores)
from twostream.model_table import MODELS
from twostream.params import load_runtime


def test_scores_are_per_sample_with_top5_and_class_mean():
    # 4 classes; class 0 has 3 samples (2 right), class 1 has 1 sample (wrong, but 2nd choice)
    logits = np.array([[5, 1, 0, 0], [5, 1, 0, 0], [0, 5, 1, 0], [2, 1, 0, 0]], np.float32)
    labels = np.array([0, 0, 0, 1])
    s = scores(logits, labels)
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["mean_class_accuracy"] == pytest.approx((2 / 3 + 0) / 2)
    assert s["top5"] == pytest.approx(1.0)  # k = min(5, classes) = 4 covers all
    assert s["loss"] > 0


def test_top5_with_twelve_classes():
    logits = np.tile(np.arange(12, dtype=np.float32), (2, 1))  # ranking 11, 10, 9, 8, 7, ...
    s = scores(logits, np.array([7, 6]))
    assert s["top5"] == pytest.approx(0.5)


def test_metrics_record_uses_the_best_epoch():
    history = [{"epoch": e, "lr": 1e-3, "train_loss": 1.0 / e, "train_accuracy": 0.1 * e,
                "val_loss": 2.0 / e, "val_accuracy": 0.05 * e, "best": e == 2} for e in (1, 2, 3)]
    checkpoint = {"num_params": 123, "best_epoch": 2, "epochs": 3, "history": history}
    record = metrics_record(checkpoint, np.eye(3, dtype=np.float32), np.array([0, 1, 2]))
    assert record["params"] == 123 and record["best_epoch"] == 2 and record["epochs"] == 3
    assert record["train"] == {"accuracy": 0.2, "loss": 0.5}
    assert record["val"] == {"accuracy": 0.1, "loss": 1.0}
    assert set(record["test"]) == {"accuracy", "loss", "top5", "mean_class_accuracy"}
    assert record["test"]["accuracy"] == 1.0


def test_confusion_rows_and_matrix():
    labels, predictions = np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2])
    rows = confusion_rows(labels, predictions, ["clap", "climb", "drink"])
    assert list(rows["actual"]) == ["clap", "climb", "climb", "drink"]
    assert list(rows["predicted"]) == ["clap", "drink", "climb", "drink"]
    matrix = confusion(labels, predictions, 4)
    assert matrix.shape == (4, 4) and matrix[1, 2] == 1 and matrix[1, 1] == 1 and matrix[3].sum() == 0


def test_results_markdown_has_the_seed_layout():
    rec = {"params": 5612204, "best_epoch": 9, "epochs": 21, "train": {"accuracy": 0.963, "loss": 0.161},
           "val": {"accuracy": 0.847, "loss": 0.5},
           "test": {"accuracy": 0.869, "loss": 0.419, "top5": 0.99, "mean_class_accuracy": 0.86}}
    text = results_markdown({"stanford40_frames": rec}, {"middle": rec})
    assert "| Stanford 40 | Frames | 0.963 / 0.847 / 0.869 | 0.161 | 5,612,204 |" in text
    assert "| Middle | 0.963 / 0.847 / 0.869 |" in text
    assert "HMDB51" not in text.split("## Frame")[0].split("|---|---|---|---|---|")[1]  # only given rows


def _record(accuracy: float) -> dict:
    return {"params": 10, "best_epoch": 1, "epochs": 2, "train": {"accuracy": 0.9, "loss": 0.1},
            "val": {"accuracy": 0.8, "loss": 0.2},
            "test": {"accuracy": accuracy, "loss": 0.3, "top5": 0.99, "mean_class_accuracy": 0.7}}


def _figures(node, prefix=""):
    """Every leaf of a nested dict as (dotted key, value)."""
    if isinstance(node, dict):
        return [f for k, v in node.items() for f in _figures(v, f"{prefix}.{k}" if prefix else k)]
    return [(prefix, node)]


def test_metrics_files_hold_every_figure_once():
    records = {m.name: _record(0.5 + 0.1 * i) for i, m in enumerate(MODELS)}
    positions = {p: _record(a) for p, a in (("first", 0.4), ("middle", 0.0), ("last", 0.42))}
    positions["middle"] = records["hmdb51_frames"]  # the headline position is the HMDB51 frame model
    files = metrics_files(records, positions, headline_position="middle")
    assert list(files) == ["accuracy", *(m.name for m in MODELS), "frame_positions"]
    assert files["accuracy"] == {m.name: records[m.name]["test"]["accuracy"] for m in MODELS}
    assert files["frame_positions"] == {"first": 0.4, "last": 0.42}  # middle is hmdb51_frames' accuracy
    for m in MODELS:
        assert "accuracy" not in files[m.name]["test"]
        assert files[m.name]["test"] == {"loss": 0.3, "top5": 0.99, "mean_class_accuracy": 0.7}
        assert files[m.name]["train"] == records[m.name]["train"] and files[m.name]["params"] == 10
    # nothing lost: every figure of every record is in exactly one file
    written = {(name, key) for name, content in files.items() for key, _ in _figures(content)}
    for m in MODELS:
        for key, _ in _figures(records[m.name]):
            where = ("accuracy", m.name) if key == "test.accuracy" else (m.name, key)
            assert where in written, (m.name, key)
    assert records["stanford40_frames"]["test"]["accuracy"] == 0.5  # the records are not modified


def test_predict_dataset_keeps_the_order_and_all_samples():
    torch.manual_seed(0)
    x = torch.randn(21, 4)
    labels = torch.arange(21) % 3
    model = nn.Linear(4, 3)
    runtime = dataclasses.replace(load_runtime("runtime.yaml"), device="cpu", num_workers=0, progress=False)
    logits, got = predict_dataset(model, TensorDataset(x, labels), batch_size=8, runtime=runtime, amp=False)
    assert logits.shape == (21, 3) and got.tolist() == labels.tolist()  # a lone last sample is kept in evaluation
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert not model.training  # evaluated in eval mode


def test_results_markdown_rows_follow_the_model_table():
    records = {m.name: _record(0.5) for m in reversed(MODELS)}
    text = results_markdown(records, {})
    rows = [line for line in text.splitlines() if line.startswith("| ") and "/ 0.800 /" in line]
    assert [r.split(" | ")[1] for r in rows] == [m.title for m in MODELS]
    assert "## Frame" not in text
