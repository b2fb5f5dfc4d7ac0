"""Stage evaluate: test metrics with their 95% intervals (one clip and the whole video, the late fusion), the
per-video predictions, confusion matrices, curves, the seed's figures, the accuracy per class and the results
table."""
from pathlib import Path

import numpy as np

from twostream import plots
from twostream.checkpoint import load_model
from twostream.cli import log, run_stage, stage_parser
from twostream.datasets import (FlowDataset, FrameDataset, TwoStreamDataset, hmdb51_subset, hmdb51_test_clips,
                                stanford40_subset)
from twostream.errors import InputError
from twostream.evaluate import (confusion, confusion_rows, late_fusion, metrics_files, metrics_record,
                                predict_dataset, prediction_csv, prediction_rows, scores, video_logits)
from twostream.io import atomic_dir, load_array, write_csv, write_json, write_text
from twostream.data.manifests import manifest_name, read_manifest
from twostream.model_table import BY_NAME, MODELS, TRAINED, VIDEO_MODELS, model_path
from twostream.models import SPATIAL_FEATURES
from twostream.params import FRAME_POSITIONS
from twostream.predictions import file_name, position_file_name
from twostream.report import confusion_name, per_class_accuracy, results_file


def test_set(entry, images: Path, frames: Path, flow: Path, position: str):
    if entry.dataset == "stanford40":
        return FrameDataset(stanford40_subset(images, "test"), None)
    if entry.inputs == ("frames",):
        return FrameDataset(hmdb51_subset(frames, None, "test"), None, position)
    if entry.inputs == ("flow",):
        return FlowDataset(hmdb51_subset(None, flow, "test"))
    return TwoStreamDataset(hmdb51_subset(frames, flow, "test"), None, position)


def test_clips_set(entry, frames: Path, flow: Path):
    """The K clips of every HMDB51 test video, K consecutive samples per video; and K."""
    if entry.inputs == ("frames",):
        clips, k = hmdb51_test_clips(frames, None)
        return FrameDataset(clips, None), k
    if entry.inputs == ("flow",):
        clips, k = hmdb51_test_clips(None, flow)
        return FlowDataset(clips), k
    clips, k = hmdb51_test_clips(frames, flow)
    return TwoStreamDataset(clips, None, None), k


def frame_position_grid(frames: Path, out: Path) -> None:
    """The five study frames of a few test clips, one per class spread over the classes."""
    manifest = read_manifest(frames / manifest_name("hmdb51", "test"), "hmdb51")
    positions = load_array(frames / "hmdb51_test_positions.npy")
    first_of_class = manifest.groupby("label").head(1).index.to_numpy()
    chosen = first_of_class[np.linspace(0, len(first_of_class) - 1, plots.GRID_VIDEOS, dtype=int)]
    titles = [f"{manifest['class'][i]}: {Path(manifest['path'][i]).stem[:40]}" for i in chosen]
    plots.frame_positions_png(np.asarray(positions[chosen]), titles, FRAME_POSITIONS, out)


def test_paths(images: Path, frames: Path) -> dict:
    """dataset -> the test videos (images) as their manifests name them, in the test sets' order."""
    return {"stanford40": read_manifest(images / manifest_name("stanford40", "test"), "stanford40")["path"],
            "hmdb51": read_manifest(frames / manifest_name("hmdb51", "test"), "hmdb51")["path"]}


def write_predictions(out: Path, paths: dict, predictions, video, position_logits) -> None:
    """plots/predictions/: every model's per-video (per-image) test predictions, one file per protocol."""
    with atomic_dir(out) as tmp:
        for entry in MODELS:
            results = [(False, *predictions[entry.name])] + ([(True, *video[entry.name])]
                                                             if entry in VIDEO_MODELS else [])
            for is_video, logits, labels in results:
                rows = prediction_rows(paths[entry.dataset], labels, logits, entry.classes)
                write_text(tmp / file_name(entry.name, is_video), prediction_csv(rows))
        for position, (logits, labels) in position_logits.items():
            rows = prediction_rows(paths["hmdb51"], labels, logits, BY_NAME["hmdb51_frames"].classes)
            write_text(tmp / position_file_name(position), prediction_csv(rows))


def main(args, params, runtime):
    images, frames, flow = Path(args.images), Path(args.frames), Path(args.flow)
    models, metrics, plot_dir = Path(args.models), Path(args.metrics), Path(args.plots)
    headline = params.frames.position
    batch, amp = params.train.batch_size, params.train.amp
    # read every input before writing any output
    loaded = {m.name: load_model(model_path(models, m.name, headline)) for m in TRAINED}
    study = {p: load_model(model_path(models, "hmdb51_frames", p)) for p in FRAME_POSITIONS}
    paths = test_paths(images, frames)
    records, predictions, clip_logits, video = {}, {}, {}, {}  # video: name -> (video logits, labels)
    clips_per_video = set()
    for entry in TRAINED:
        model, checkpoint = loaded[entry.name]
        logits, labels = predict_dataset(model, test_set(entry, images, frames, flow, headline), batch, runtime,
                                         amp, desc=f"test {entry.name}")
        records[entry.name], predictions[entry.name] = metrics_record(checkpoint, logits, labels), (logits, labels)
        log.info("%s: test accuracy %.3f (best epoch %d/%d)", entry.name, records[entry.name]["test"]["accuracy"],
                 checkpoint["best_epoch"], checkpoint["epochs"])
        if entry in VIDEO_MODELS:
            clips, k = test_clips_set(entry, frames, flow)
            clip_logits[entry.name], _ = predict_dataset(model, clips, batch, runtime, amp,
                                                         desc=f"test {entry.name}, {k} clips per video")
            video[entry.name] = video_logits(clip_logits[entry.name], k), labels
            clips_per_video.add(k)
    if len(clips_per_video) != 1:
        raise InputError(f"{frames} and {flow} hold different numbers of test clips per video "
                         f"({sorted(clips_per_video)}); re-run the data stages (`dvc repro`)")
    (k,) = clips_per_video
    for entry in VIDEO_MODELS:
        if entry.fuses:  # late fusion: the mean softmax of trained models, per clip, then over the video's clips
            labels = predictions[entry.fuses[0]][1]
            fused = late_fusion(*(predictions[name][0] for name in entry.fuses))
            records[entry.name], predictions[entry.name] = {"test": scores(fused, labels)}, (fused, labels)
            video[entry.name] = video_logits(late_fusion(*(clip_logits[name] for name in entry.fuses)), k), labels
            log.info("%s: test accuracy %.3f", entry.name, records[entry.name]["test"]["accuracy"])
    video_scores = {m.name: scores(*video[m.name]) for m in VIDEO_MODELS}
    for name, video_score in video_scores.items():
        log.info("%s: video-level test accuracy %.3f (%d clips per video)", name, video_score["accuracy"], k)
    positions, position_logits = {}, {}
    for position, (model, checkpoint) in study.items():
        if position == headline:
            positions[position] = records["hmdb51_frames"]
            continue
        test = FrameDataset(hmdb51_subset(frames, None, "test"), None, position)
        position_logits[position] = predict_dataset(model, test, batch, runtime, amp, desc=f"test {position}")
        positions[position] = metrics_record(checkpoint, *position_logits[position])
        log.info("frame position %s: test accuracy %.3f", position, positions[position]["test"]["accuracy"])

    files = metrics_files({m.name: records[m.name] for m in MODELS}, positions, headline, video_scores)
    for name, content in files.items():
        write_json(metrics / f"{name}.json", content)
    write_predictions(plot_dir / "predictions", paths, predictions, video, position_logits)
    confusions = {}
    for entry in MODELS:
        results = [(False, *predictions[entry.name])] + ([(True, *video[entry.name])] if entry in VIDEO_MODELS else [])
        for is_video, logits, labels in results:
            name, predicted = confusion_name(entry.name, is_video), logits.argmax(1)
            confusions[name] = confusion_rows(labels, predicted, entry.classes)
            write_csv(plot_dir / "confusion" / f"{name}.csv", confusions[name])
            title = f"{entry.label} (test, {f'{k} clips per video' if is_video else 'one clip per video'})" \
                if entry in VIDEO_MODELS else f"{entry.label} (test)"
            plots.confusion_png(confusion(labels, predicted, len(entry.classes)), entry.classes,
                                plot_dir / "confusion" / f"{name}.png", title)
        if entry.name not in loaded:
            continue
        model, checkpoint = loaded[entry.name]
        plots.curves_png(checkpoint["history"], plot_dir / "curves" / f"{entry.name}.png", entry.label,
                         checkpoint["best_epoch"])
        if entry.kind == "twostream":
            plots.fusion_weights_png(model.fusion.conv.weight.detach().cpu().numpy(),
                                     plot_dir / "fusion_weights.png", n_spatial=SPATIAL_FEATURES)
    classes = VIDEO_MODELS[0].classes
    plots.per_class_accuracy_png(
        {title: {m.title: per_class_accuracy(confusions[confusion_name(m.name, is_video)], classes)
                 for m in VIDEO_MODELS}
         for title, is_video in ((f"{VIDEO_MODELS[0].dataset_title}, one clip per test video", False),
                                 (f"{VIDEO_MODELS[0].dataset_title}, {k} clips per test video (mean softmax)", True))},
        classes, plot_dir / "per_class_accuracy.png")
    plots.position_study_png({p: {s: r[s]["accuracy"] for s in ("train", "val", "test")}
                              for p, r in positions.items()}, plot_dir / "frame_positions_accuracy.png")
    frame_position_grid(frames, plot_dir / "frame_positions.png")
    write_text(metrics / "results.md", results_file(files, confusions, synthetic=params.data.source == "synthetic"))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    for name, help_text in (("images", "pad_resize's output"), ("frames", "sample_frames' output"),
                            ("flow", "flow stage's output"), ("models", "trained models"),
                            ("metrics", "metrics directory"), ("plots", "plots directory")):
        parser.add_argument(f"--{name}", required=True, help=help_text)
    run_stage(main, parser)
