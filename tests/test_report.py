"""The results text: written from the metrics files and confusion rows alone, the same from memory and from disk."""
import json

import numpy as np
import pandas as pd
import pytest

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.classes import DESIGNED_PAIRS
from twostream.errors import InputError, MissingInputError
from twostream.evaluate import metrics_files
from twostream.model_table import MODELS, TRAINED, VIDEO_MODELS
from twostream.report import (confusion_name, headline_markdown, pair_counts, per_class_accuracy, read_confusions,
                              read_metrics, results_file, results_markdown)


def _interval(accuracy):
    return [round(accuracy - 0.093, 4), round(accuracy + 0.081, 4)]


def _record(accuracy, params=10):
    return {"params": params, "best_epoch": 3, "epochs": 5, "train": {"accuracy": 0.9, "loss": 0.1234},
            "val": {"accuracy": 0.8, "loss": 0.2},
            "test": {"accuracy": accuracy, "accuracy_ci95": _interval(accuracy), "loss": 0.3, "top5": 0.99,
                     "mean_class_accuracy": 0.7}}


def example_metrics():
    records = {"stanford40_frames": _record(0.869, 5612204), "hmdb51_frames": _record(0.664, 5612204),
               "hmdb51_flow": _record(0.435, 11248524), "hmdb51_twostream": _record(0.714, 18441784),
               "hmdb51_late_fusion": {"test": {"accuracy": 0.7, "accuracy_ci95": _interval(0.7), "loss": 0.9,
                                               "top5": 0.95, "mean_class_accuracy": 0.69}}}
    positions = {"first": _record(0.502), "first_middle": _record(0.593), "middle": records["hmdb51_frames"],
                 "middle_last": _record(0.622), "last": _record(0.586)}
    video = {name: {"accuracy": a, "accuracy_ci95": _interval(a)} for name, a in
             {"hmdb51_frames": 0.70, "hmdb51_flow": 0.40, "hmdb51_twostream": 0.75, "hmdb51_late_fusion": 0.74}.items()}
    return metrics_files(records, positions, "middle", video)


def _rows(pairs):
    """Confusion rows from (actual, predicted, count) triples."""
    actual = [a for a, _, n in pairs for _ in range(n)]
    predicted = [p for _, p, n in pairs for _ in range(n)]
    return pd.DataFrame({"actual": actual, "predicted": predicted})


def example_confusions():
    """Frames: perfect on appearance pairs, swaps motion pairs; flow: the reverse; the fusions: one error each."""
    rows = {}
    for m in MODELS:
        classes = m.classes
        base = [(c, c, 5) for c in classes]
        if m.dataset == "hmdb51":
            base = [(c, c, 5) for c in classes if c not in {x for a, b, _ in DESIGNED_PAIRS for x in (a, b)}]
            for a, b, cue in DESIGNED_PAIRS:
                if m.kind == "spatial":
                    base += [(a, a, 2), (a, b, 3), (b, b, 1), (b, a, 4)] if cue == "motion" else [(a, a, 5), (b, b, 5)]
                elif m.kind == "temporal":
                    base += [(a, a, 5), (b, b, 4), (b, "climb", 1)] if cue == "motion" else [(a, b, 5), (b, b, 5)]
                else:
                    base += [(a, a, 5), (b, b, 4), (b, a, 1)]
        rows[confusion_name(m.name, False)] = _rows(base)
        if m in VIDEO_MODELS:
            rows[confusion_name(m.name, True)] = _rows([(c, c, 5) for c in classes])
    return rows


def test_pair_counts_and_per_class_accuracy():
    rows = _rows([("clap", "clap", 2), ("clap", "wave", 3), ("wave", "wave", 1), ("wave", "clap", 4),
                  ("wave", "run", 1), ("run", "clap", 2)])
    assert pair_counts(rows, "clap", "wave") == (11, 3, 7)  # 11 clips, 3 right, 7 swaps (not the one to run)
    assert pair_counts(rows, "wave", "clap") == (11, 3, 7)
    assert pair_counts(rows, "drink", "smoke") == (0, 0, 0)
    accuracy = per_class_accuracy(rows, HMDB51_CLASSES)
    assert accuracy[HMDB51_CLASSES.index("clap")] == pytest.approx(0.4)
    assert accuracy[HMDB51_CLASSES.index("wave")] == pytest.approx(1 / 6)
    assert accuracy[HMDB51_CLASSES.index("run")] == 0.0
    assert np.isnan(accuracy[HMDB51_CLASSES.index("drink")])  # no test clip of the class


def test_results_have_the_seed_table_with_the_late_fusion():
    text = results_markdown(example_metrics(), example_confusions())
    assert "| Stanford 40 | Frames | 0.900 / 0.800 / 0.869 [0.78, 0.95] | 0.123 | 5,612,204 |" in text
    assert "| HMDB51 | Two-stream | 0.900 / 0.800 / 0.714 [0.62, 0.80] | 0.123 | 18,441,784 |" in text
    # not trained: no train/val figures; its parameters are those of the frame and the flow model
    assert "| HMDB51 | Late fusion | – / – / 0.700 [0.61, 0.78] | – | 16,860,728 |" in text
    assert "exact 95% binomial (Clopper-Pearson) interval" in text
    assert "| HMDB51 Late fusion | 0.950 | 0.690 | 0.900 |" in text
    assert "Best epoch / epochs: Frames (Stanford 40) 3/5, " in text and "Late fusion (HMDB51)" not in text
    rows = [line.split(" | ")[1] for line in text.split("\n\n")[0].splitlines()[2:]]
    assert rows == [m.title for m in MODELS]  # in the model table's order


def test_results_put_one_clip_next_to_the_video():
    text = results_markdown(example_metrics(), example_confusions())
    assert "## One clip vs the whole video" in text
    assert "| HMDB51 Frames | 0.664 [0.57, 0.74] | 0.700 [0.61, 0.78] | +0.036 |" in text
    assert "| HMDB51 Optical flow | 0.435 [0.34, 0.52] | 0.400 [0.31, 0.48] | -0.035 |" in text
    assert "| HMDB51 Late fusion | 0.700 [0.61, 0.78] | 0.740 [0.65, 0.82] | +0.040 |" in text
    assert "mean softmax of the frames and the optical flow models" in text


def test_results_count_the_designed_pairs_and_judge_the_streams():
    text = results_markdown(example_metrics(), example_confusions(), level=3)
    assert "### Designed class pairs" in text
    assert "| Pair (separable only by) | Test videos | Frames | Optical flow | Two-stream | Late fusion |" in text
    assert "| clap / wave (motion) | 10 | 3 (7) | 9 (0) | 9 (1) | 9 (1) |" in text
    assert "| drink / smoke (appearance) | 10 | 10 (0) | 5 (5) | 9 (1) | 9 (1) |" in text
    assert ("On the motion pairs (clap/wave, run/jump: 20 test videos) the models get frames 6, optical flow 18, "
            "two-stream 18, late fusion 18 right.") in text
    assert "the flow model is the better one on the motion pairs, as designed" in text
    assert "the frame model is the better one on the appearance pairs, as designed" in text
    # the other way round, the text says so
    confusions = example_confusions()
    confusions["hmdb51_frames"], confusions["hmdb51_flow"] = confusions["hmdb51_flow"], confusions["hmdb51_frames"]
    text = results_markdown(example_metrics(), confusions)
    assert "the frame model is the better one on the motion pairs, against the design (which favours flow)" in text


def test_results_list_the_frame_positions_test_accuracy():
    text = results_markdown(example_metrics(), example_confusions())
    assert "| First | 0.502 [0.41, 0.58] |" in text and "| Last | 0.586 [0.49, 0.67] |" in text
    assert "| Middle (`frames.position`) | 0.664 [0.57, 0.74] |" in text
    assert text.index("| First |") < text.index("| Middle (") < text.index("| Last |")


def write_results(root, metrics, confusions):
    (root / "metrics").mkdir(parents=True)
    (root / "plots" / "confusion").mkdir(parents=True)
    for name, content in metrics.items():
        (root / "metrics" / f"{name}.json").write_text(json.dumps(content, indent=2) + "\n")
    for name, rows in confusions.items():
        rows.to_csv(root / "plots" / "confusion" / f"{name}.csv", index=False)


def test_written_and_read_back_the_results_are_the_same(tmp_path):
    metrics, confusions = example_metrics(), example_confusions()
    write_results(tmp_path, metrics, confusions)
    again = results_file(read_metrics(tmp_path / "metrics"), read_confusions(tmp_path / "plots" / "confusion"))
    assert again == results_file(metrics, confusions)
    assert again.startswith("# Results\n\n| Dataset | Model |")


def test_bad_metrics_name_the_file_and_key(tmp_path):
    metrics = example_metrics()
    write_results(tmp_path, metrics, example_confusions())
    path = tmp_path / "metrics" / "hmdb51_flow.json"
    del metrics["hmdb51_flow"]["val"]["loss"]
    path.write_text(json.dumps(metrics["hmdb51_flow"]))
    with pytest.raises(InputError, match=r"hmdb51_flow.json: val.loss: missing; re-run the evaluate stage"):
        read_metrics(tmp_path / "metrics")
    accuracy = tmp_path / "metrics" / "accuracy.json"
    accuracy.write_text(json.dumps({**metrics["accuracy"], "video_accuracy": {"hmdb51_frames": "high"}}))
    with pytest.raises(InputError, match=r"accuracy.json: video_accuracy.hmdb51_frames: expected a number, got 'high'"):
        read_metrics(tmp_path / "metrics")
    write_results(tmp_path / "again", example_metrics(), example_confusions())
    metrics_dir = tmp_path / "again" / "metrics"
    twostream = metrics_dir / "hmdb51_twostream.json"
    for interval in ([0.6, 0.5], [0.5], "[0.5, 0.6]", None):
        test = {**metrics["hmdb51_twostream"]["test"], "video_accuracy_ci95": interval}
        twostream.write_text(json.dumps({**metrics["hmdb51_twostream"], "test": test}))
        with pytest.raises(InputError, match=r"hmdb51_twostream.json: test.video_accuracy_ci95: expected an "
                                             r"interval \[low, high\] within 0..1, got "):
            read_metrics(metrics_dir)
    twostream.write_text(json.dumps(metrics["hmdb51_twostream"]))
    (metrics_dir / "frame_positions.json").write_text(json.dumps({"first": 0.5, "accuracy_ci95": {}}))
    with pytest.raises(InputError, match=r"frame_positions.json: accuracy_ci95.first: missing"):
        read_metrics(metrics_dir)
    accuracy.write_text("{not json")
    with pytest.raises(InputError, match=r"accuracy.json: not valid JSON"):
        read_metrics(tmp_path / "metrics")
    accuracy.unlink()
    with pytest.raises(MissingInputError, match=r"accuracy.json: not found; run `dvc repro`"):
        read_metrics(tmp_path / "metrics")


def test_bad_confusion_rows_name_the_file_and_line(tmp_path):
    write_results(tmp_path, example_metrics(), example_confusions())
    path = tmp_path / "plots" / "confusion" / "hmdb51_flow_video.csv"
    path.write_text("actual,predicted\nclap,clap\nclap,applauding\n")  # a Stanford40 name in an HMDB51 file
    with pytest.raises(InputError, match=r"hmdb51_flow_video.csv:3: predicted 'applauding' is not a hmdb51 class"):
        read_confusions(tmp_path / "plots" / "confusion")
    path.unlink()
    with pytest.raises(MissingInputError, match=r"hmdb51_flow_video.csv: not found"):
        read_confusions(tmp_path / "plots" / "confusion")


def test_every_reported_model_has_confusion_rows():
    names = set(example_confusions())
    assert {m.name for m in MODELS} <= names and {f"{m.name}_video" for m in VIDEO_MODELS} <= names
    assert "stanford40_frames_video" not in names  # still images: no video level
    assert all(m.classes == STANFORD40_CLASSES for m in TRAINED if m.dataset == "stanford40")


def test_real_data_results_have_no_designed_pair_section():
    """The designed pairs are the synthetic set's; a run on the real classes says nothing about them."""
    synthetic = results_markdown(example_metrics(), example_confusions())
    real = results_markdown(example_metrics(), example_confusions(), synthetic=False)
    assert "Designed class pairs" in synthetic and "DESIGNED_PAIRS" in synthetic
    assert "Designed class pairs" not in real and "designed" not in real.lower()
    assert "Frame position" in real and "One clip vs the whole video" in real


def test_the_headline_is_the_first_part_of_the_results():
    """README.md shows `headline_markdown` (scripts/readme_results.py): the result table with the intervals and one
    clip vs the whole video, word for word as metrics/results.md begins; the pairs and positions stay there only."""
    metrics, confusions = example_metrics(), example_confusions()
    headline = headline_markdown(metrics, level=3)
    full = results_markdown(metrics, confusions, level=3)
    assert full.startswith(headline.rstrip("\n") + "\n\n")
    assert "| HMDB51 | Two-stream | 0.900 / 0.800 / 0.714 [0.62, 0.80] | 0.123 | 18,441,784 |" in headline
    assert "### One clip vs the whole video" in headline and "[0.61, 0.78] | +0.036 |" in headline
    assert "Designed class pairs" not in headline and "Frame position" not in headline
    assert "Designed class pairs" in full and "Frame position" in full
