"""Stage stanford40_frames: GoogLeNet on Stanford40 stills (12 classes)."""
from pathlib import Path

from twostream.checkpoint import checkpoint_meta, preprocess_meta
from twostream.classes import NUM_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.datasets import FrameDataset, stanford40_subset
from twostream.model_table import BY_STAGE
from twostream.models import ModelSpec, build_model
from twostream.train import seed_everything, stage_params, train_stage

STAGE = "stanford40_frames"


def main(args, params, runtime):
    seed_everything(params.seed)
    entry, images = BY_STAGE[STAGE], Path(args.images)
    augment = params.augment if params.stanford40_frames.augment else None
    train, val = stanford40_subset(images, "train"), stanford40_subset(images, "val")
    spec = ModelSpec.fresh(entry.kind, NUM_CLASSES, params.model)
    model = build_model(spec)
    meta = checkpoint_meta(spec, model, entry.dataset, entry.classes, train.image_size, stage_params(params, STAGE),
                           preprocess=preprocess_meta("image", train.image_size))
    train_stage(STAGE, model, FrameDataset(train, augment), FrameDataset(val, None), params, runtime,
                Path(args.out), Path(args.curves), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="pad_resize's output directory")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--curves", required=True, help="directory for the per-epoch curves (TSV)")
    run_stage(main, parser)
