"""Stage evaluate: test metrics, confusion matrices, curves, the seed's figures and the results table."""
import json
from pathlib import Path

import numpy as np

from twostream import plots
from twostream.cli import log, run_stage, stage_parser
from twostream.datasets import FlowDataset, FrameDataset, TwoStreamDataset, hmdb51_split, stanford40_split
from twostream.evaluate import RESULT_ROWS, confusion, confusion_rows, results_markdown
from twostream.io import load_array, read_csv, write_csv, write_json, write_text
from twostream.params import FRAME_POSITIONS
from twostream.pipeline import evaluate_on_test, load_model

GRID_VIDEOS = 6  # test clips shown in the frame-position figure


def test_set(name, checkpoint, images, frames, flow):
    position = checkpoint.get("position")
    if name == "stanford40_frames":
        return FrameDataset(stanford40_split(images, "test"), None)
    if name == "hmdb51_frames":
        return FrameDataset(hmdb51_split(frames, None, "test"), None, position)
    if name == "hmdb51_flow":
        return FlowDataset(hmdb51_split(None, flow, "test"))
    return TwoStreamDataset(hmdb51_split(frames, flow, "test"), None, position)


def frame_position_grid(frames: Path, out: Path) -> None:
    """The five study frames of a few test clips, one per class spread over the classes."""
    manifest = read_csv(frames / "hmdb51_test.csv", ("path", "label", "class"))
    positions = load_array(frames / "hmdb51_test_positions.npy")
    first_of_class = manifest.groupby("label").head(1).index.to_numpy()
    chosen = first_of_class[np.linspace(0, len(first_of_class) - 1, GRID_VIDEOS, dtype=int)]
    titles = [f"{manifest['class'][i]}: {Path(manifest['path'][i]).stem[:40]}" for i in chosen]
    plots.frame_positions_png(np.asarray(positions[chosen]), titles, FRAME_POSITIONS, out)


def main(args, params):
    images, frames, flow = Path(args.images), Path(args.frames), Path(args.flow)
    models, metrics, plot_dir = Path(args.models), Path(args.metrics), Path(args.plots)
    positions = {}  # read every input before writing any output
    for position in FRAME_POSITIONS:
        path = metrics / "frame_positions" / f"{position}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: frame-position result missing; run the position_study stage")
        positions[position] = json.loads(path.read_text())
    loaded = {name: load_model(models / f"{name}.pt") for name in RESULT_ROWS}
    records = {}
    for name, (dataset, label) in RESULT_ROWS.items():
        model, checkpoint = loaded[name]
        record, logits, labels = evaluate_on_test(model, checkpoint, test_set(name, checkpoint, images, frames,
                                                                              flow), params)
        records[name] = record
        write_json(metrics / f"{name}.json", record)
        predictions, classes = logits.argmax(1), checkpoint["classes"]
        write_csv(plot_dir / "confusion" / f"{name}.csv", confusion_rows(labels, predictions, classes))
        plots.confusion_png(confusion(labels, predictions, len(classes)), classes,
                            plot_dir / "confusion" / f"{name}.png", f"{dataset} {label} (test)")
        plots.curves_png(checkpoint["history"], plot_dir / "curves" / f"{name}.png", f"{dataset} {label}",
                         checkpoint["best_epoch"])
        if name == "hmdb51_twostream":
            plots.fusion_weights_png(model.fusion.conv.weight.detach().cpu().numpy(),
                                     plot_dir / "fusion_weights.png")
        log.info("%s: test accuracy %.3f (best epoch %d/%d)", name, record["test"]["accuracy"],
                 record["best_epoch"], record["epochs"])
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
