import numpy as np
import pytest

from twostream.evaluate import confusion, confusion_rows, metrics_record, results_markdown, scores


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
