"""Stage evaluate: test metrics with their 95% intervals (one clip and the whole video, the late fusion), the
per-video predictions, confusion matrices, curves, the seed's figures, the accuracy per class and the results
table."""
from pathlib import Path

from twostream import plots
from twostream.cli import run_stage, stage_parser
from twostream.evaluate import (TestData, confusions, fusion_weight, load_models, test_models, write_confusions,
                                write_metrics, write_predictions)
from twostream.io import write_text
from twostream.models import SPATIAL_FEATURES
from twostream.report import results_file


def main(args, params, runtime):
    data = TestData(Path(args.images), Path(args.frames), Path(args.flow))
    metrics, plot_dir = Path(args.metrics), Path(args.plots)
    # read every input before writing any output
    loaded, study = load_models(Path(args.models), params.frames.position)
    paths = data.test_paths()
    results = test_models(loaded, study, data, params.frames.position, params.train.batch_size, params.train.amp,
                          runtime)
    files = write_metrics(metrics, results)
    write_predictions(plot_dir / "predictions", paths, results)
    tables = confusions(results)
    write_confusions(plot_dir / "confusion", tables)
    plots.evaluation_figures(plot_dir, tables, {name: checkpoint for name, (_, checkpoint) in loaded.items()},
                             fusion_weight(loaded), SPATIAL_FEATURES, results.positions, results.clips, data.frames)
    write_text(metrics / "results.md", results_file(files, {name: t.rows for name, t in tables.items()},
                                                    synthetic=params.data.source == "synthetic"))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    for name, help_text in (("images", "pad_resize's output"), ("frames", "sample_frames' output"),
                            ("flow", "flow stage's output"), ("models", "trained models"),
                            ("metrics", "metrics directory"), ("plots", "plots directory")):
        parser.add_argument(f"--{name}", required=True, help=help_text)
    run_stage(main, parser)
