"""Stage evaluate: test metrics, confusion matrices, curves, the seed's figures and the results table."""
from pathlib import Path

import numpy as np

from twostream import plots
from twostream.checkpoint import load_model
from twostream.cli import log, run_stage, stage_parser
from twostream.datasets import FlowDataset, FrameDataset, TwoStreamDataset, hmdb51_subset, stanford40_subset
from twostream.evaluate import (confusion, confusion_rows, metrics_files, metrics_record, predict_dataset,
                                results_markdown)
from twostream.io import load_array, write_csv, write_json, write_text
from twostream.data.manifests import manifest_name, read_manifest
from twostream.model_table import MODELS, model_path
from twostream.models import SPATIAL_FEATURES
from twostream.params import FRAME_POSITIONS


def test_set(entry, images: Path, frames: Path, flow: Path, position: str):
    if entry.dataset == "stanford40":
        return FrameDataset(stanford40_subset(images, "test"), None)
    if entry.inputs == ("frames",):
        return FrameDataset(hmdb51_subset(frames, None, "test"), None, position)
    if entry.inputs == ("flow",):
        return FlowDataset(hmdb51_subset(None, flow, "test"))
    return TwoStreamDataset(hmdb51_subset(frames, flow, "test"), None, position)


def frame_position_grid(frames: Path, out: Path) -> None:
    """The five study frames of a few test clips, one per class spread over the classes."""
    manifest = read_manifest(frames / manifest_name("hmdb51", "test"), "hmdb51")
    positions = load_array(frames / "hmdb51_test_positions.npy")
    first_of_class = manifest.groupby("label").head(1).index.to_numpy()
    chosen = first_of_class[np.linspace(0, len(first_of_class) - 1, plots.GRID_VIDEOS, dtype=int)]
    titles = [f"{manifest['class'][i]}: {Path(manifest['path'][i]).stem[:40]}" for i in chosen]
    plots.frame_positions_png(np.asarray(positions[chosen]), titles, FRAME_POSITIONS, out)


def main(args, params, runtime):
    images, frames, flow = Path(args.images), Path(args.frames), Path(args.flow)
    models, metrics, plot_dir = Path(args.models), Path(args.metrics), Path(args.plots)
    headline = params.frames.position
    batch, amp = params.train.batch_size, params.train.amp
    # read every input before writing any output
    loaded = {m.name: load_model(model_path(models, m.name, headline)) for m in MODELS}
    study = {p: load_model(model_path(models, "hmdb51_frames", p)) for p in FRAME_POSITIONS}
    records, predictions = {}, {}
    for entry in MODELS:
        model, checkpoint = loaded[entry.name]
        logits, labels = predict_dataset(model, test_set(entry, images, frames, flow, headline), batch, runtime,
                                         amp, desc=f"test {entry.name}")
        records[entry.name], predictions[entry.name] = metrics_record(checkpoint, logits, labels), (logits, labels)
        log.info("%s: test accuracy %.3f (best epoch %d/%d)", entry.name, records[entry.name]["test"]["accuracy"],
                 checkpoint["best_epoch"], checkpoint["epochs"])
    positions = {}
    for position, (model, checkpoint) in study.items():
        if position == headline:
            positions[position] = records["hmdb51_frames"]
            continue
        test = FrameDataset(hmdb51_subset(frames, None, "test"), None, position)
        positions[position] = metrics_record(checkpoint, *predict_dataset(model, test, batch, runtime, amp,
                                                                           desc=f"test {position}"))
        log.info("frame position %s: test accuracy %.3f", position, positions[position]["test"]["accuracy"])

    for name, content in metrics_files(records, positions, headline).items():
        write_json(metrics / f"{name}.json", content)
    for entry in MODELS:
        (logits, labels), (model, checkpoint) = predictions[entry.name], loaded[entry.name]
        predicted, classes = logits.argmax(1), checkpoint["classes"]
        write_csv(plot_dir / "confusion" / f"{entry.name}.csv", confusion_rows(labels, predicted, classes))
        plots.confusion_png(confusion(labels, predicted, len(classes)), classes,
                            plot_dir / "confusion" / f"{entry.name}.png", f"{entry.label} (test)")
        plots.curves_png(checkpoint["history"], plot_dir / "curves" / f"{entry.name}.png", entry.label,
                         checkpoint["best_epoch"])
        if entry.kind == "twostream":
            plots.fusion_weights_png(model.fusion.conv.weight.detach().cpu().numpy(),
                                     plot_dir / "fusion_weights.png", n_spatial=SPATIAL_FEATURES)
    plots.position_study_png({p: {s: r[s]["accuracy"] for s in ("train", "val", "test")}
                              for p, r in positions.items()}, plot_dir / "frame_positions_accuracy.png")
    frame_position_grid(frames, plot_dir / "frame_positions.png")
    write_text(metrics / "results.md", results_markdown(records, positions))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    for name, help_text in (("images", "pad_resize's output"), ("frames", "sample_frames' output"),
                            ("flow", "flow stage's output"), ("models", "trained models"),
                            ("metrics", "metrics directory"), ("plots", "plots directory")):
        parser.add_argument(f"--{name}", required=True, help=help_text)
    run_stage(main, parser)
