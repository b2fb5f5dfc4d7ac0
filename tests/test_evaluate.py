import dataclasses
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from twostream.evaluate import (confusion, confusion_rows, late_fusion, log_mean_softmax, metrics_files,
                                metrics_record, predict_dataset, prediction_csv, prediction_rows, scores,
                                video_logits)
from twostream.model_table import MODELS, TRAINED, VIDEO_MODELS
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
    # 2 of 4 right: the exact binomial interval solves P(X >= 2) = 0.025 and P(X <= 2) = 0.025
    low, high = s["accuracy_ci95"]
    assert low == pytest.approx(0.0676, abs=1e-4) and high == pytest.approx(0.9324, abs=1e-4)


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
    assert set(record["test"]) == {"accuracy", "accuracy_ci95", "loss", "top5", "mean_class_accuracy"}
    assert record["test"]["accuracy"] == 1.0
    assert record["test"]["accuracy_ci95"] == [pytest.approx(0.025 ** (1 / 3)), 1.0]  # 3/3: low = 0.025^(1/3)


def test_confusion_rows_and_matrix():
    labels, predictions = np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2])
    rows = confusion_rows(labels, predictions, ["clap", "climb", "drink"])
    assert list(rows["actual"]) == ["clap", "climb", "climb", "drink"]
    assert list(rows["predicted"]) == ["clap", "drink", "climb", "drink"]
    matrix = confusion(labels, predictions, 4)
    assert matrix.shape == (4, 4) and matrix[1, 2] == 1 and matrix[1, 1] == 1 and matrix[3].sum() == 0


def _record(accuracy: float) -> dict:
    return {"params": 10, "best_epoch": 1, "epochs": 2, "train": {"accuracy": 0.9, "loss": 0.1},
            "val": {"accuracy": 0.8, "loss": 0.2},
            "test": {"accuracy": accuracy, "accuracy_ci95": [accuracy - 0.1, accuracy + 0.1], "loss": 0.3,
                     "top5": 0.99, "mean_class_accuracy": 0.7}}


def _figures(node, prefix=""):
    """Every leaf of a nested dict as (dotted key, value)."""
    if isinstance(node, dict):
        return [f for k, v in node.items() for f in _figures(v, f"{prefix}.{k}" if prefix else k)]
    return [(prefix, node)]


def test_metrics_files_hold_every_figure_once():
    records = {m.name: _record(0.5 + 0.1 * i) for i, m in enumerate(TRAINED)}
    records["hmdb51_late_fusion"] = {"test": {"accuracy": 0.45, "accuracy_ci95": [0.35, 0.55], "loss": 0.4,
                                              "top5": 0.9, "mean_class_accuracy": 0.6}}
    positions = {p: _record(a) for p, a in (("first", 0.4), ("middle", 0.0), ("last", 0.42))}
    positions["middle"] = records["hmdb51_frames"]  # the headline position is the HMDB51 frame model
    video = {m.name: {"accuracy": 0.25 + 0.1 * i, "accuracy_ci95": [0.2 + 0.1 * i, 0.3 + 0.1 * i], "loss": 1.0}
             for i, m in enumerate(VIDEO_MODELS)}
    files = metrics_files(records, positions, headline_position="middle", video=video)
    assert list(files) == ["accuracy", *(m.name for m in MODELS), "frame_positions"]
    # the headline single-clip accuracies first (dvc exp show's first columns), then the video-level ones
    assert list(files["accuracy"]) == [*(m.name for m in MODELS), "video_accuracy"]
    assert files["accuracy"] == {**{m.name: records[m.name]["test"]["accuracy"] for m in MODELS},
                                 "video_accuracy": {n: v["accuracy"] for n, v in video.items()}}
    # middle is hmdb51_frames' accuracy; the intervals of the others follow
    assert files["frame_positions"] == {"first": 0.4, "last": 0.42,
                                        "accuracy_ci95": {"first": [0.4 - 0.1, 0.5], "last": [0.42 - 0.1, 0.52]}}
    for m in TRAINED:
        a = records[m.name]["test"]["accuracy"]
        assert "accuracy" not in files[m.name]["test"]
        video_interval = {"video_accuracy_ci95": video[m.name]["accuracy_ci95"]} if m in VIDEO_MODELS else {}
        assert files[m.name]["test"] == {"accuracy_ci95": [a - 0.1, a + 0.1], "loss": 0.3, "top5": 0.99,
                                         "mean_class_accuracy": 0.7, **video_interval}
        assert files[m.name]["train"] == records[m.name]["train"] and files[m.name]["params"] == 10
    assert files["hmdb51_late_fusion"] == {"test": {"accuracy_ci95": [0.35, 0.55], "loss": 0.4, "top5": 0.9,
                                                    "mean_class_accuracy": 0.6,
                                                    "video_accuracy_ci95": video["hmdb51_late_fusion"]["accuracy_ci95"]}}
    # nothing lost: every figure of every record is in exactly one file
    written = [(name, key) for name, content in files.items() for key, _ in _figures(content)]
    assert len(written) == len(set(written))
    for m in MODELS:
        for key, _ in _figures(records[m.name]):
            where = ("accuracy", m.name) if key == "test.accuracy" else (m.name, key)
            assert where in written, (m.name, key)
    # what DVC lists (numbers; the [low, high] intervals are not listed): at most 60 in dvc exp show
    listed = [v for _, content in files.items() for _, v in _figures(content) if isinstance(v, (int, float))]
    assert len(listed) <= 60
    assert records["stanford40_frames"]["test"]["accuracy"] == 0.5  # the records are not modified


def _softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_video_score_is_the_mean_softmax_not_a_vote_nor_the_middle_clip():
    # one video, 3 clips, 3 classes: two clips lean weakly to class 0, the middle clip among them;
    # one clip is sure of class 1. Majority vote and the middle clip say 0; the mean softmax says 1.
    clips = np.log(np.array([[0.40, 0.35, 0.25],
                             [0.40, 0.35, 0.25],
                             [0.02, 0.96, 0.02]]))
    majority = np.bincount(clips.argmax(1)).argmax()
    assert majority == 0 and clips[1].argmax() == 0
    video = video_logits(clips, clips=3)
    assert video.shape == (1, 3) and video.argmax(1).tolist() == [1]
    np.testing.assert_allclose(np.exp(video[0]), [0.82 / 3, 1.66 / 3, 0.52 / 3])  # the mean probabilities


def test_video_logits_group_consecutive_clips_and_are_logits_for_scores():
    rng = np.random.default_rng(0)
    clip_logits = rng.normal(size=(4 * 5, 12)).astype(np.float32) * 3  # 4 videos, 5 clips each
    video = video_logits(clip_logits, clips=5)
    assert video.shape == (4, 12)
    expected = _softmax(clip_logits.astype(np.float64)).reshape(4, 5, 12).mean(1)
    np.testing.assert_allclose(np.exp(video), expected, rtol=1e-9)
    np.testing.assert_allclose(_softmax(video), expected, rtol=1e-9)  # softmax of the result is the mean softmax
    labels = np.array([0, 3, 5, 11])
    assert scores(video, labels)["loss"] == pytest.approx(-np.log(expected[range(4), labels]).mean(), rel=1e-6)
    # one clip per video: the clip's own prediction and loss
    single = video_logits(clip_logits[:4], clips=1)
    np.testing.assert_allclose(_softmax(single), _softmax(clip_logits[:4].astype(np.float64)), rtol=1e-6)
    with pytest.raises(ValueError, match="clip scores"):
        video_logits(clip_logits[:7], clips=5)


def test_log_mean_softmax_stays_finite_when_a_probability_underflows():
    logits = np.array([[[1000.0, 0.0, 0.0], [1000.0, 0.0, 0.0]]], np.float32)  # p(class 1) = e^-1000: 0 in float32
    out = log_mean_softmax(logits)
    assert np.isfinite(out).all() and out[0, 1] == pytest.approx(-1000.0)
    assert scores(out, np.array([1]))["loss"] == pytest.approx(1000.0)
    with pytest.raises(ValueError, match="expected"):
        log_mean_softmax(np.zeros((2, 3)))


def test_late_fusion_averages_probabilities_of_the_streams():
    # the frame model is sure of class 2 (wrong), the flow model prefers class 0 less surely, on sample 0;
    # both agree on sample 1
    frames = np.log(np.array([[0.05, 0.05, 0.90], [0.10, 0.80, 0.10]]))
    flow = np.log(np.array([[0.70, 0.25, 0.05], [0.20, 0.60, 0.20]]))
    fused = late_fusion(frames, flow)
    np.testing.assert_allclose(np.exp(fused), [[0.375, 0.15, 0.475], [0.15, 0.70, 0.15]])
    assert fused.argmax(1).tolist() == [2, 1]
    flow_sure = np.log(np.array([[0.95, 0.04, 0.01], [0.2, 0.6, 0.2]]))
    assert late_fusion(frames, flow_sure).argmax(1).tolist() == [0, 1]  # the surer stream wins
    # per clip, then over a video's clips: every clip of every stream weighs the same
    clips_frames, clips_flow = np.repeat(frames, 2, axis=0), np.repeat(flow, 2, axis=0)
    video = video_logits(late_fusion(clips_frames, clips_flow), clips=2)
    np.testing.assert_allclose(video, fused, rtol=1e-9)
    with pytest.raises(ValueError, match="one shape"):
        late_fusion(frames, flow[:1])
    with pytest.raises(ValueError, match="two or more"):
        late_fusion(frames)


def test_predict_dataset_keeps_the_order_and_all_samples():
    torch.manual_seed(0)
    x = torch.randn(21, 4)
    labels = torch.arange(21) % 3
    model = nn.Linear(4, 3)
    runtime = dataclasses.replace(load_runtime("runtime.yaml"), device="cpu", loader_workers=0, progress=False)
    logits, got = predict_dataset(model, TensorDataset(x, labels), batch_size=8, runtime=runtime, amp=False)
    assert logits.shape == (21, 3) and got.tolist() == labels.tolist()  # a lone last sample is kept in evaluation
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert not model.training  # evaluated in eval mode


class _PidDataset(torch.utils.data.Dataset):
    """Each sample is the id of the process that loaded it."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int):
        return torch.tensor([float(os.getpid())]), 0


def test_evaluation_on_the_cpu_loads_in_this_process_whatever_num_workers_says():
    # make_loader(shuffle=False) on the CPU: a worker per test or val set cost more than it saved
    runtime = dataclasses.replace(load_runtime("runtime.yaml"), device="cpu", loader_workers=2, progress=False)
    identity = nn.Linear(1, 1)
    with torch.no_grad():
        identity.weight.fill_(1.0)
        identity.bias.zero_()
    logits, _ = predict_dataset(identity, _PidDataset(), batch_size=4, runtime=runtime, amp=False)
    assert set(logits[:, 0].round().astype(int).tolist()) == {os.getpid()}


def test_prediction_rows_hold_the_video_its_classes_and_probabilities():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    rows = prediction_rows(["a/v1.avi", "b/v2.avi"], np.array([0, 1]), logits, ["clap", "climb", "drink"])
    assert list(rows.columns) == ["path", "actual", "predicted", "p_clap", "p_climb", "p_drink"]
    assert list(rows["path"]) == ["a/v1.avi", "b/v2.avi"]
    assert list(rows["actual"]) == ["clap", "climb"] and list(rows["predicted"]) == ["clap", "drink"]
    assert rows.iloc[1, 3:].to_numpy(float) == pytest.approx([0.1, 0.3, 0.6])
    text = prediction_csv(rows)
    assert text.splitlines()[1] == "a/v1.avi,clap,clap,0.700000,0.200000,0.100000"
    assert "\r" not in text and text.endswith("\n")
    with pytest.raises(ValueError, match="expected 3 x 3 scores"):
        prediction_rows(["a", "b", "c"], np.array([0, 1, 2]), logits, ["clap", "climb", "drink"])


def fake_results(rng=None, videos=6, clips=3):
    """A TestResults of random scores for every model and protocol, and the study's other positions."""
    from twostream.evaluate import TestResults
    from twostream.params import FRAME_POSITIONS

    rng = rng or np.random.default_rng(0)
    results = TestResults("middle", clips=clips)
    for m in MODELS:
        labels = np.arange(videos) % len(m.classes)
        results.predictions[m.name] = rng.normal(size=(videos, len(m.classes))).astype(np.float32), labels
        results.records[m.name] = _record(0.5) if m.stage else {"test": scores(*results.predictions[m.name])}
        if m in VIDEO_MODELS:
            results.video[m.name] = rng.normal(size=(videos, len(m.classes))), labels
    for p in FRAME_POSITIONS:
        if p != "middle":
            results.position_scores[p] = rng.normal(size=(videos, 12)).astype(np.float32), np.arange(videos) % 12
        results.positions[p] = results.records["hmdb51_frames"] if p == "middle" else _record(0.4)
    return results


def test_the_stage_writers_write_every_model_and_protocol(tmp_path):
    import json

    from twostream.evaluate import confusions, write_confusions, write_metrics, write_predictions
    from twostream.predictions import describe, order

    results = fake_results()
    tables = confusions(results)
    assert list(tables) == [n for m in MODELS for n in ([m.name, f"{m.name}_video"] if m in VIDEO_MODELS
                                                        else [m.name])]
    assert tables["hmdb51_flow_video"].title == "HMDB51 Optical flow (test, 3 clips per video)"
    assert tables["hmdb51_flow"].title == "HMDB51 Optical flow (test, one clip per video)"
    assert tables["stanford40_frames"].title == "Stanford 40 Frames (test)"
    logits, labels = results.video["hmdb51_twostream"]
    table = tables["hmdb51_twostream_video"]
    np.testing.assert_array_equal(table.matrix, confusion(labels, logits.argmax(1), 12))
    assert list(table.rows["predicted"]) == [table.entry.classes[i] for i in logits.argmax(1)]

    write_confusions(tmp_path / "confusion", tables)
    assert sorted(p.stem for p in (tmp_path / "confusion").iterdir()) == sorted(tables)
    files = write_metrics(tmp_path / "metrics", results)
    assert files == metrics_files({m.name: results.records[m.name] for m in MODELS}, results.positions, "middle",
                                  results.video_scores())
    for name, content in files.items():
        assert json.loads((tmp_path / "metrics" / f"{name}.json").read_text()) == content

    paths = {"stanford40": [f"s/{i}.jpg" for i in range(6)], "hmdb51": [f"h/{i}.avi" for i in range(6)]}
    write_predictions(tmp_path / "predictions", paths, results)
    written = sorted(p.name for p in (tmp_path / "predictions").iterdir())
    assert all(describe(n) is not None for n in written)
    assert len(written) == len(tables) + 4  # every confusion's protocol, and the study's 4 other positions
    rows = pd.read_csv(tmp_path / "predictions" / "hmdb51_late_fusion_video.csv")
    assert list(rows["path"]) == paths["hmdb51"] and order(written)[0] == "stanford40_frames.csv"


def test_evaluation_figures_draw_every_figure_of_the_stage(tmp_path):
    from twostream import plots
    from twostream.classes import HMDB51_CLASSES
    from twostream.data import arrays
    from twostream.evaluate import confusions

    results = fake_results()
    frames = tmp_path / "frames"
    frames.mkdir()
    labels = np.arange(24) % 12
    pd.DataFrame({"path": [f"{HMDB51_CLASSES[k]}/v{i}.avi" for i, k in enumerate(labels)], "label": labels,
                  "class": [HMDB51_CLASSES[k] for k in labels]}).to_csv(frames / "hmdb51_test.csv", index=False)
    np.save(frames / arrays.positions("test"), np.zeros((24, 5, 16, 16, 3), np.uint8))
    history = [dict(epoch=e, lr=1e-3, train_loss=1.0 / e, train_accuracy=0.5, val_loss=1.0 / e, val_accuracy=0.4)
               for e in (1, 2)]
    checkpoints = {m.name: {"history": history, "best_epoch": 2} for m in TRAINED}
    tables = confusions(results)
    plots.evaluation_figures(tmp_path / "plots", tables, checkpoints, np.ones((8, 12, 1, 1), np.float32), 8,
                             results.positions, results.clips, frames)
    written = sorted(str(p.relative_to(tmp_path / "plots")) for p in (tmp_path / "plots").rglob("*.png"))
    assert written == sorted([*(f"confusion/{n}.png" for n in tables), *(f"curves/{m.name}.png" for m in TRAINED),
                              "fusion_weights.png", "per_class_accuracy.png", "frame_positions_accuracy.png",
                              "frame_positions.png"])
    assert all((tmp_path / "plots" / p).read_bytes().startswith(b"\x89PNG") for p in written)


def _test_arrays(tmp_path, k, videos=70, size=4):
    """Test arrays as sample_frames and flow write them, the middle of K clips equal to the one clip."""
    from twostream.data import arrays
    from twostream.evaluate import TestData

    rng = np.random.default_rng(0)
    frames, flow = tmp_path / "frames", tmp_path / "flow"
    frames.mkdir(exist_ok=True)
    flow.mkdir(exist_ok=True)
    positions = rng.integers(0, 256, (videos, 5, size, size, 3), dtype=np.uint8)
    stacks = rng.integers(0, 256, (videos, 8, size, size, 3), dtype=np.uint8)
    clip_frames = rng.integers(0, 256, (videos, k, size, size, 3), dtype=np.uint8)
    clip_stacks = rng.integers(0, 256, (videos, k, 8, size, size, 3), dtype=np.uint8)
    clip_frames[:, k // 2], clip_stacks[:, k // 2] = positions[:, 2], stacks  # position 2: middle
    for path, array in ((frames / arrays.positions("test"), positions), (frames / arrays.clip_frames(), clip_frames),
                        (flow / arrays.flow("test"), stacks), (flow / arrays.clip_flow(), clip_stacks)):
        np.save(path, array)
    return TestData(tmp_path / "images", frames, flow), flow / arrays.clip_flow()


def test_the_one_clip_input_is_recognised_as_the_middle_test_clip_only_when_it_is(tmp_path):
    from twostream.model_table import BY_NAME

    frames, flow, both = BY_NAME["hmdb51_frames"], BY_NAME["hmdb51_flow"], BY_NAME["hmdb51_twostream"]
    data, clip_flow = _test_arrays(tmp_path, k=3)
    assert all(data.one_clip_is_middle_clip(m, "middle", 3) for m in (frames, flow, both))
    assert not data.one_clip_is_middle_clip(frames, "first", 3)  # another position's frame
    # one byte of the last video's middle flow stack (past the first chunk of videos) differs
    stacks = np.load(clip_flow)
    stacks[-1, 1, 7, 0, 0, 0] ^= 1
    np.save(clip_flow, stacks)
    assert data.one_clip_is_middle_clip(frames, "middle", 3)
    assert not data.one_clip_is_middle_clip(flow, "middle", 3) and not data.one_clip_is_middle_clip(both, "middle", 3)
    # an even K has no middle clip
    data, _ = _test_arrays(tmp_path, k=2)
    assert not data.one_clip_is_middle_clip(frames, "middle", 2)


class _FakeTestData:
    """What test_models reads of TestData: one sample per test video and K clips per video, as tensors."""

    def __init__(self, one, clips, labels, middle):
        self.one, self.clips, self.labels, self.middle = one, clips, labels, middle
        self.frames = self.flow = None

    def test_set(self, entry, position):
        return TensorDataset(self.one, self.labels)

    def test_clips(self, entry):
        k = self.clips.shape[1]
        return TensorDataset(self.clips.reshape(-1, *self.clips.shape[2:]), self.labels.repeat_interleave(k)), k

    def one_clip_is_middle_clip(self, entry, position, k):
        return self.middle


@pytest.mark.parametrize("middle", [True, False])
def test_one_clip_scores_come_from_the_middle_test_clip_when_it_is_the_same_input(monkeypatch, middle):
    from twostream import evaluate

    torch.manual_seed(0)
    clips, labels = torch.randn(10, 3, 6), torch.arange(10) % 12
    one = clips[:, 1] if middle else torch.randn(10, 6)
    history = [{"epoch": 1, "lr": 1e-3, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.0,
                "val_accuracy": 0.5, "best": True}]
    checkpoint = {"num_params": 1, "best_epoch": 1, "epochs": 1, "history": history}
    loaded = {m.name: (nn.Linear(6, 12), checkpoint) for m in TRAINED}
    calls = []
    real = evaluate.predict_dataset
    monkeypatch.setattr(evaluate, "predict_dataset", lambda model, dataset, *a, **kw: calls.append(len(dataset))
                        or real(model, dataset, *a, **kw))
    runtime = dataclasses.replace(load_runtime("runtime.yaml"), device="cpu", loader_workers=0, progress=False)
    results = evaluate.test_models(loaded, {}, _FakeTestData(one, clips, labels, middle), "middle", 4, False, runtime)
    one_clip_passes = len(TRAINED) - (len(VIDEO_MODELS) - 1 if middle else 0)  # late fusion is not trained
    assert calls.count(10) == one_clip_passes and calls.count(30) == len(VIDEO_MODELS) - 1
    for entry in TRAINED:
        logits, got = results.predictions[entry.name]
        with torch.no_grad():
            np.testing.assert_allclose(logits, loaded[entry.name][0](one).numpy(), rtol=1e-5, atol=1e-5)
        assert got.tolist() == labels.tolist()
