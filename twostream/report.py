"""The results people read, written from the committed results only: the metrics files
(metrics/*.json, see `twostream.evaluate`) and the confusion rows (plots/confusion/*.csv).

`evaluate` writes `results_markdown` of what it has just written to metrics/results.md;
scripts/readme_results.py writes the same sections between the markers of README.md from the
committed files, so the README cannot disagree with them (tests/test_readme_results.py). The
sections: the seed's result table (with the late fusion), one clip vs the whole video, the
designed class pairs of the synthetic set (`classes.DESIGNED_PAIRS`: right answers and swaps
within each pair, and which stream does better on each kind of pair), and the frame-position study.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twostream.classes import DESIGNED_PAIRS
from twostream.errors import InputError, MissingInputError
from twostream.io import read_csv
from twostream.model_table import BY_NAME, MODELS, TRAINED, VIDEO_MODELS, ModelEntry
from twostream.params import FRAME_POSITIONS

CONFUSION_COLUMNS = ("actual", "predicted")
VIDEO_SUFFIX = "_video"  # plots/confusion/<model>_video.csv: the video-level confusion rows
# what each metrics file must hold (dotted keys), by file name
_RECORD_KEYS = ("params", "best_epoch", "epochs", "train.accuracy", "train.loss", "val.accuracy", "val.loss")
_TEST_KEYS = ("test.loss", "test.top5", "test.mean_class_accuracy")
INTERVAL = "accuracy_ci95"  # the key of a test accuracy's 95% interval, [low, high] (`stats.accuracy_interval`)
VIDEO_INTERVAL = f"video_{INTERVAL}"


def confusion_name(model: str, video: bool) -> str:
    """File stem of a model's confusion rows: `<model>` (one clip per video) or `<model>_video`."""
    return f"{model}{VIDEO_SUFFIX}" if video else model


def required_keys() -> dict[str, tuple[str, ...]]:
    """metrics file name -> the dotted keys of numbers it must hold (frame_positions.json: any of FRAME_POSITIONS)."""
    keys = {"accuracy": (*(m.name for m in MODELS), *(f"video_accuracy.{m.name}" for m in VIDEO_MODELS))}
    for m in MODELS:
        keys[m.name] = (*_RECORD_KEYS, *_TEST_KEYS) if m.stage is not None else _TEST_KEYS
    keys["frame_positions"] = ()
    return keys


def required_intervals() -> dict[str, tuple[str, ...]]:
    """metrics file name -> the dotted keys of the [low, high] intervals it must hold (accuracy.json: none;
    frame_positions.json: one per position it lists)."""
    keys = {m.name: (f"test.{INTERVAL}", *((f"test.{VIDEO_INTERVAL}",) if m in VIDEO_MODELS else ())) for m in MODELS}
    keys["frame_positions"] = ()
    return keys


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and bool(np.isfinite(value))


def _get(node: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            raise KeyError(dotted)
        node = node[key]
    return node


def read_metrics(metrics_dir: Path) -> dict[str, dict[str, Any]]:
    """The metrics files evaluate writes (file stem -> content), each checked for the figures the report needs."""
    out = {}
    for name, keys in required_keys().items():
        path = Path(metrics_dir) / f"{name}.json"
        if not path.is_file():
            raise MissingInputError(f"{path}: not found; run `dvc repro` (the evaluate stage writes it)")
        try:
            content = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc}); re-run the evaluate stage") from None
        if not isinstance(content, dict):
            raise InputError(f"{path}: expected a JSON object; re-run the evaluate stage")
        intervals = required_intervals().get(name, ())
        if name == "frame_positions":
            keys = tuple(k for k in content if k != INTERVAL)
            unknown = [k for k in keys if k not in FRAME_POSITIONS]
            if unknown:
                raise InputError(f"{path}: {unknown[0]}: not a frame position ({', '.join(FRAME_POSITIONS)}); "
                                 f"re-run the evaluate stage")
            intervals = tuple(f"{INTERVAL}.{k}" for k in keys)
        for key in (*keys, *intervals):
            try:
                value = _get(content, key)
            except KeyError:
                raise InputError(f"{path}: {key}: missing; re-run the evaluate stage") from None
            if key in intervals:
                if not (isinstance(value, list) and len(value) == 2 and all(map(_number, value))
                        and 0 <= value[0] <= value[1] <= 1):
                    raise InputError(f"{path}: {key}: expected an interval [low, high] within 0..1, got {value!r}; "
                                     f"re-run the evaluate stage")
            elif not _number(value):
                raise InputError(f"{path}: {key}: expected a number, got {value!r}; re-run the evaluate stage")
        out[name] = content
    return out


def read_confusions(confusion_dir: Path) -> dict[str, pd.DataFrame]:
    """The confusion rows of every model (one clip; and video level for the HMDB51 models), checked:
    columns `actual`, `predicted`, class names of the model's dataset."""
    out = {}
    names = [(m, confusion_name(m.name, False)) for m in MODELS]
    names += [(m, confusion_name(m.name, True)) for m in VIDEO_MODELS]
    for entry, name in names:
        path = Path(confusion_dir) / f"{name}.csv"
        rows = read_csv(path, CONFUSION_COLUMNS)
        for column in CONFUSION_COLUMNS:
            bad = rows.index[~rows[column].isin(entry.classes)]
            if len(bad):
                raise InputError(f"{path}:{bad[0] + 2}: {column} {rows[column][bad[0]]!r} is not a {entry.dataset} "
                                 f"class; re-run the evaluate stage")
        out[name] = rows[list(CONFUSION_COLUMNS)]
    return out


def per_class_accuracy(rows: pd.DataFrame, classes: tuple[str, ...]) -> np.ndarray:
    """Share of each class's test samples predicted right, in class order (NaN for a class without samples)."""
    right = (rows["actual"] == rows["predicted"]).groupby(rows["actual"]).agg(["sum", "count"])
    right = right.reindex(list(classes))
    return (right["sum"] / right["count"]).to_numpy(dtype=float)


def pair_counts(rows: pd.DataFrame, first: str, second: str) -> tuple[int, int, int]:
    """(test samples of the pair, predicted right, swaps: one class of the pair predicted as the other)."""
    actual, predicted = rows["actual"], rows["predicted"]
    in_pair = actual.isin((first, second))
    swaps = ((actual == first) & (predicted == second)) | ((actual == second) & (predicted == first))
    return int(in_pair.sum()), int((in_pair & (actual == predicted)).sum()), int(swaps.sum())


def _f(value: float) -> str:
    return f"{value:.3f}"


def _ci(accuracy: float, interval: list[float]) -> str:
    """`0.508 [0.42, 0.60]`: a test accuracy and its 95% interval."""
    return f"{accuracy:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"


INTERVAL_NOTE = ("In brackets after each test accuracy: its exact 95% binomial (Clopper-Pearson) interval over the "
                 "test videos (images for Stanford 40). Whether two runs differ is a paired question: "
                 "`twostream compare` (docs/comparing.md).")


def _seed_table(metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| Dataset | Model | Top-1 accuracy (train / val / test [95% interval]) | Top-1 loss train | "
             "Model parameters |", "|---|---|---|---|---|"]
    accuracy = metrics["accuracy"]
    for m in MODELS:
        r = metrics[m.name]
        test = _ci(accuracy[m.name], r["test"][INTERVAL])
        if m.stage is None:  # not trained: no train or val figures; its size is that of the models it fuses
            size = sum(metrics[part]["params"] for part in m.fuses)
            lines.append(f"| {m.dataset_title} | {m.title} | – / – / {test} | – | {size:,} |")
            continue
        lines.append(f"| {m.dataset_title} | {m.title} | {_f(r['train']['accuracy'])} / {_f(r['val']['accuracy'])} / "
                     f"{test} | {r['train']['loss']:.3f} | {r['params']:,} |")
    lines += ["", INTERVAL_NOTE]
    lines += ["", "Best epoch / epochs: " + ", ".join(
        f"{m.title} ({m.dataset_title}) {metrics[m.name]['best_epoch']}/{metrics[m.name]['epochs']}"
        for m in TRAINED) + "."]
    lines += ["", "| Model | Test top-5 | Test mean class accuracy | Test loss |", "|---|---|---|---|"]
    for m in MODELS:
        t = metrics[m.name]["test"]
        lines.append(f"| {m.label} | {_f(t['top5'])} | {_f(t['mean_class_accuracy'])} | {t['loss']:.3f} |")
    return lines


def _fusion_note() -> str:
    fused = [m for m in MODELS if m.fuses]
    return " ".join(f"{m.title}: the mean softmax of the {' and the '.join(BY_NAME[p].title.lower() for p in m.fuses)} "
                    f"models (not trained)." for m in fused)


def _video_table(metrics: Mapping[str, Mapping[str, Any]], heading: str) -> list[str]:
    accuracy = metrics["accuracy"]
    lines = [f"{heading} One clip vs the whole video", "",
             "Test accuracy of the seed's protocol (one frame and one flow stack from the middle of each test video) "
             "and at video level (the mean softmax over `video_test.clips` clips spread evenly over the video, "
             f"each a frame and a flow stack). {_fusion_note()}", "",
             "| Model | One clip | Video | Difference |", "|---|---|---|---|"]
    for m in VIDEO_MODELS:
        one, video = accuracy[m.name], accuracy["video_accuracy"][m.name]
        test = metrics[m.name]["test"]
        lines.append(f"| {m.label} | {_ci(one, test[INTERVAL])} | {_ci(video, test[VIDEO_INTERVAL])} | "
                     f"{video - one:+.3f} |")
    return lines


def _by_kind(kind: str) -> ModelEntry:
    return next(m for m in VIDEO_MODELS if m.kind == kind)


def _compare(better: str, worse: str, kind: str, counts: Mapping[str, int]) -> str:
    """'the flow model is the better one on the motion pairs, as designed' (or a tie, or against it)."""
    if counts[better] == counts[worse]:
        return f"on the {kind} pairs the {better} and {worse} models tie, where the design favours the {better} model"
    if counts[better] > counts[worse]:
        return f"the {better} model is the better one on the {kind} pairs, as designed"
    return f"the {worse} model is the better one on the {kind} pairs, against the design (which favours {better})"


def _pairs_section(confusions: Mapping[str, pd.DataFrame], heading: str) -> list[str]:
    models = list(VIDEO_MODELS)
    lines = [f"{heading} Designed class pairs", "",
             "The synthetic classes come in pairs that only one cue tells apart (`DESIGNED_PAIRS` in "
             "`twostream/classes.py`). Test videos of each pair that each model gets right (one clip per "
             "video), and in brackets its swaps within the pair (a video of one class predicted as the other):", "",
             "| Pair (separable only by) | Test videos | " + " | ".join(m.title for m in models) + " |",
             "|---|---|" + "---|" * len(models)]
    right: dict[str, dict[str, int]] = {}  # cue -> model -> right answers on the pairs of that cue
    totals: dict[str, int] = {}
    for first, second, cue in DESIGNED_PAIRS:
        cells, n = [], 0
        for m in models:
            n, correct, swaps = pair_counts(confusions[confusion_name(m.name, False)], first, second)
            cells.append(f"{correct} ({swaps})")
            right.setdefault(cue, {}).setdefault(m.name, 0)
            right[cue][m.name] += correct
        totals[cue] = totals.get(cue, 0) + n
        lines.append(f"| {first} / {second} ({cue}) | {n} | " + " | ".join(cells) + " |")
    frames, flow = _by_kind("spatial"), _by_kind("temporal")
    short = {frames.name: "frame", flow.name: "flow"}
    sentences = []
    for cue in right:
        pairs = ", ".join(f"{a}/{b}" for a, b, c in DESIGNED_PAIRS if c == cue)
        counts = ", ".join(f"{m.title.lower()} {right[cue][m.name]}" for m in models)
        sentences.append(f"On the {cue} pairs ({pairs}: {totals[cue]} test videos) the models get {counts} right.")
    verdicts = []
    if "motion" in right:
        verdicts.append(_compare("flow", "frame", "motion", {short[k]: v for k, v in right["motion"].items()
                                                              if k in short}))
    if "appearance" in right:
        verdicts.append(_compare("frame", "flow", "appearance", {short[k]: v for k, v in right["appearance"].items()
                                                                  if k in short}))
    if verdicts:
        sentences.append("Of the single streams, " + "; ".join(verdicts) + ".")
    return [*lines, "", " ".join(sentences)]


def _positions_section(metrics: Mapping[str, Mapping[str, Any]], heading: str) -> list[str]:
    others = metrics["frame_positions"]
    headline = [p for p in FRAME_POSITIONS if p not in others]
    lines = [f"{heading} Frame position (HMDB51 frame model)", "", "| Frame | Test top-1 [95% interval] |",
             "|---|---|"]
    for position in FRAME_POSITIONS:
        label = position.replace("_", "-").capitalize()
        if position in others:
            lines.append(f"| {label} | {_ci(others[position], others[INTERVAL][position])} |")
        elif len(headline) == 1:  # the frame model at frames.position: hmdb51_frames
            frames = _ci(metrics["accuracy"]["hmdb51_frames"], metrics["hmdb51_frames"]["test"][INTERVAL])
            lines.append(f"| {label} (`frames.position`) | {frames} |")
    return lines


def results_markdown(metrics: Mapping[str, Mapping[str, Any]], confusions: Mapping[str, pd.DataFrame],
                     level: int = 2, synthetic: bool = True) -> str:
    """The results sections from the metrics files' contents (`read_metrics`) and the confusion rows
    (`read_confusions`); section headings at markdown `level`. The designed-pair section only for the
    synthetic set (`synthetic`: `data.source` is synthetic): real classes have no designed pairs."""
    heading = "#" * level
    pairs = [*_pairs_section(confusions, heading), ""] if synthetic else []
    lines = [*_seed_table(metrics), "", *_video_table(metrics, heading), "", *pairs,
             *_positions_section(metrics, heading)]
    return "\n".join(lines) + "\n"


def headline_markdown(metrics: Mapping[str, Mapping[str, Any]], level: int = 2) -> str:
    """The headline of `results_markdown`, for the README: the seed's result table with the test intervals,
    and one clip vs the whole video (the other sections stay in metrics/results.md)."""
    lines = [*_seed_table(metrics), "", *_video_table(metrics, "#" * level)]
    return "\n".join(lines) + "\n"


def results_file(metrics: Mapping[str, Mapping[str, Any]], confusions: Mapping[str, pd.DataFrame],
                 synthetic: bool = True) -> str:
    """metrics/results.md: a title, then `results_markdown`."""
    return "# Results\n\n" + results_markdown(metrics, confusions, level=2, synthetic=synthetic)
