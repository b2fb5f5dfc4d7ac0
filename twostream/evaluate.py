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

The evaluate stage is `load_models`, `test_models` (every model on both protocols, the late fusion and
the frame-position study, all in memory: a `TestResults`), then the writers: `write_metrics`,
`write_predictions`, `write_confusions`, and `plots.evaluation_figures`.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, top_k_accuracy_score

from torch import nn
from torch.utils.data import Dataset

from twostream.checkpoint import load_model
from twostream.data import arrays
from twostream.data.manifests import manifest_name, read_manifest
from twostream.datasets import FlowDataset, FrameDataset, TwoStreamDataset, hmdb51_subset, hmdb51_test_clips, \
    stanford40_subset
from twostream.device import resolve_device
from twostream.errors import InputError
from twostream.io import atomic_dir, load_array, same_array, write_csv, write_json, write_text
from twostream.model_table import BY_NAME, MODELS, TRAINED, VIDEO_MODELS, ModelEntry, model_path
from twostream.params import FRAME_POSITIONS, RuntimeParams
from twostream.predictions import file_name, position_file_name
from twostream.report import confusion_name
from twostream.stats import accuracy_interval
from twostream.train import make_loader, place_model, predict


log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- the evaluate stage's run

@dataclass(frozen=True)
class TestData:
    """The prepared test data: the directories of pad_resize, sample_frames and flow."""
    images: Path
    frames: Path
    flow: Path

    def test_set(self, entry: ModelEntry, position: str) -> Dataset:
        """The seed's protocol: one sample per test video (image), frames at `position`."""
        if entry.dataset == "stanford40":
            return FrameDataset(stanford40_subset(self.images, "test"), None)
        if entry.inputs == ("frames",):
            return FrameDataset(hmdb51_subset(self.frames, None, "test"), None, position)
        if entry.inputs == ("flow",):
            return FlowDataset(hmdb51_subset(None, self.flow, "test"))
        return TwoStreamDataset(hmdb51_subset(self.frames, self.flow, "test"), None, position)

    def test_clips(self, entry: ModelEntry) -> tuple[Dataset, int]:
        """The K clips of every HMDB51 test video, K consecutive samples per video; and K."""
        if entry.inputs == ("frames",):
            clips, k = hmdb51_test_clips(self.frames, None)
            return FrameDataset(clips, None), k
        if entry.inputs == ("flow",):
            clips, k = hmdb51_test_clips(None, self.flow)
            return FlowDataset(clips), k
        clips, k = hmdb51_test_clips(self.frames, self.flow)
        return TwoStreamDataset(clips, None, None), k

    def one_clip_is_middle_clip(self, entry: ModelEntry, position: str, k: int) -> bool:
        """Whether every test video's one-clip input (the frame at `position`, the seed's flow stack) is
        exactly the middle one of its K test clips, as it is for odd K at position middle
        (`video.clip_centres`). Checked on the arrays."""
        if k % 2 == 0:
            return False
        pairs = []
        if "frames" in entry.inputs:
            pairs.append((load_array(self.frames / arrays.positions(arrays.TEST))[:, FRAME_POSITIONS.index(position)],
                          load_array(self.frames / arrays.clip_frames())[:, k // 2]))
        if "flow" in entry.inputs:
            pairs.append((load_array(self.flow / arrays.flow(arrays.TEST)), load_array(self.flow / arrays.clip_flow())[:, k // 2]))
        return all(same_array(one, middle) for one, middle in pairs)

    def test_paths(self) -> dict[str, pd.Series]:
        """dataset -> the test videos (images) as their manifests name them, in the test sets' order."""
        return {"stanford40": read_manifest(self.images / manifest_name("stanford40", "test"), "stanford40")["path"],
                "hmdb51": read_manifest(self.frames / manifest_name("hmdb51", "test"), "hmdb51")["path"]}


@dataclass
class TestResults:
    """Every model's test results, in memory. Scores are (logits, labels) pairs."""
    headline: str                      # frames.position: the study position of hmdb51_frames
    records: dict[str, dict] = field(default_factory=dict)        # model -> metrics record
    predictions: dict[str, tuple] = field(default_factory=dict)   # model -> one clip per video
    video: dict[str, tuple] = field(default_factory=dict)         # HMDB51 model -> video level
    clips: int = 0                                                # K: test clips per video
    positions: dict[str, dict] = field(default_factory=dict)      # study position -> metrics record
    position_scores: dict[str, tuple] = field(default_factory=dict)  # other positions -> one clip per video

    def video_scores(self) -> dict[str, dict[str, Any]]:
        return {m.name: scores(*self.video[m.name]) for m in VIDEO_MODELS}

    def protocols(self, entry: ModelEntry) -> list[tuple[bool, np.ndarray, np.ndarray]]:
        """(video level?, logits, labels) of a model: one clip per video, then video level (HMDB51)."""
        video = [(True, *self.video[entry.name])] if entry in VIDEO_MODELS else []
        return [(False, *self.predictions[entry.name]), *video]


def load_models(models_dir: Path, headline: str) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(model name -> (model, checkpoint)) of every trained model (hmdb51_frames at `headline`), and
    (position -> (model, checkpoint)) of the frame-position study."""
    loaded = {m.name: load_model(model_path(models_dir, m.name, headline)) for m in TRAINED}
    study = {p: load_model(model_path(models_dir, "hmdb51_frames", p)) for p in FRAME_POSITIONS}
    return loaded, study


def test_models(loaded: Mapping[str, tuple], study: Mapping[str, tuple], data: TestData, headline: str,
                batch_size: int, amp: bool, runtime: RuntimeParams) -> TestResults:
    """Every trained model on one clip per video and (HMDB51) on K clips per video, the late fusion of
    `model_table`, and the study's frame models at their own positions."""
    results, clip_logits, clips_per_video = TestResults(headline), {}, set()
    for entry in TRAINED:
        model, checkpoint = loaded[entry.name]
        middle = None  # the one-clip scores, when the K-clip pass already holds them
        if entry in VIDEO_MODELS:
            clips, k = data.test_clips(entry)
            clip_logits[entry.name], clip_labels = predict_dataset(model, clips, batch_size, runtime, amp,
                                                                   desc=f"test {entry.name}, {k} clips per video")
            clips_per_video.add(k)
            if data.one_clip_is_middle_clip(entry, headline, k):
                middle = clip_logits[entry.name][k // 2::k], clip_labels[::k]
        logits, labels = middle or predict_dataset(model, data.test_set(entry, headline), batch_size, runtime, amp,
                                                   desc=f"test {entry.name}")
        results.records[entry.name] = metrics_record(checkpoint, logits, labels)
        results.predictions[entry.name] = logits, labels
        log.info("%s: test accuracy %.3f (best epoch %d/%d)", entry.name,
                 results.records[entry.name]["test"]["accuracy"], checkpoint["best_epoch"], checkpoint["epochs"])
        if entry in VIDEO_MODELS:
            results.video[entry.name] = video_logits(clip_logits[entry.name], k), labels
    if len(clips_per_video) != 1:
        raise InputError(f"{data.frames} and {data.flow} hold different numbers of test clips per video "
                         f"({sorted(clips_per_video)}); re-run the data stages (`dvc repro`)")
    (results.clips,) = clips_per_video
    for entry in VIDEO_MODELS:
        if entry.fuses:  # late fusion: the mean softmax of trained models, per clip, then over the video's clips
            labels = results.predictions[entry.fuses[0]][1]
            fused = late_fusion(*(results.predictions[name][0] for name in entry.fuses))
            results.records[entry.name] = {"test": scores(fused, labels)}
            results.predictions[entry.name] = fused, labels
            results.video[entry.name] = (video_logits(late_fusion(*(clip_logits[n] for n in entry.fuses)),
                                                      results.clips), labels)
            log.info("%s: test accuracy %.3f", entry.name, results.records[entry.name]["test"]["accuracy"])
    for name, video_score in results.video_scores().items():
        log.info("%s: video-level test accuracy %.3f (%d clips per video)", name, video_score["accuracy"],
                 results.clips)
    for position, (model, checkpoint) in study.items():
        if position == headline:
            results.positions[position] = results.records["hmdb51_frames"]
            continue
        test = FrameDataset(hmdb51_subset(data.frames, None, "test"), None, position)
        results.position_scores[position] = predict_dataset(model, test, batch_size, runtime, amp,
                                                            desc=f"test {position}")
        results.positions[position] = metrics_record(checkpoint, *results.position_scores[position])
        log.info("frame position %s: test accuracy %.3f", position, results.positions[position]["test"]["accuracy"])
    return results


def write_metrics(metrics_dir: Path, results: TestResults) -> dict[str, dict[str, Any]]:
    """metrics/<name>.json (`metrics_files`); returns their contents."""
    files = metrics_files({m.name: results.records[m.name] for m in MODELS}, results.positions, results.headline,
                          results.video_scores())
    for name, content in files.items():
        write_json(Path(metrics_dir) / f"{name}.json", content)
    return files


def write_predictions(out: Path, paths: Mapping[str, Sequence[str]], results: TestResults) -> None:
    """plots/predictions/: every model's per-video (per-image) test predictions, one file per protocol."""
    with atomic_dir(out) as tmp:
        for entry in MODELS:
            for is_video, logits, labels in results.protocols(entry):
                rows = prediction_rows(paths[entry.dataset], labels, logits, entry.classes)
                write_text(tmp / file_name(entry.name, is_video), prediction_csv(rows))
        for position, (logits, labels) in results.position_scores.items():
            rows = prediction_rows(paths["hmdb51"], labels, logits, BY_NAME["hmdb51_frames"].classes)
            write_text(tmp / position_file_name(position), prediction_csv(rows))


@dataclass(frozen=True)
class Confusion:
    """One model's test confusion under one protocol: the rows (DVC's template), the counts, a title."""
    entry: ModelEntry
    rows: pd.DataFrame
    matrix: np.ndarray
    title: str


def confusions(results: TestResults) -> dict[str, Confusion]:
    """`report.confusion_name` -> the Confusion of every model and protocol."""
    out = {}
    for entry in MODELS:
        for is_video, logits, labels in results.protocols(entry):
            predicted = logits.argmax(1)
            protocol = f"{results.clips} clips per video" if is_video else "one clip per video"
            title = f"{entry.label} (test, {protocol})" if entry in VIDEO_MODELS else f"{entry.label} (test)"
            out[confusion_name(entry.name, is_video)] = Confusion(
                entry, confusion_rows(labels, predicted, entry.classes),
                confusion(labels, predicted, len(entry.classes)), title)
    return out


def write_confusions(out: Path, tables: Mapping[str, Confusion]) -> None:
    """plots/confusion/<name>.csv: the rows of every confusion."""
    for name, table in tables.items():
        write_csv(Path(out) / f"{name}.csv", table.rows)


def fusion_weight(loaded: Mapping[str, tuple]) -> np.ndarray:
    """The two-stream model's fusion layer weight (out, spatial + temporal features, 1, 1), as numpy."""
    (entry,) = (m for m in TRAINED if m.kind == "twostream")
    return loaded[entry.name][0].fusion.conv.weight.detach().cpu().numpy()
