"""Stage train_spatial: GoogLeNet on Stanford40 stills (12 classes)."""
from pathlib import Path

from twostream.classes import NUM_CLASSES, STANFORD40_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.datasets import FrameDataset, stanford40_split
from twostream.models import spatial_model
from twostream.pipeline import model_meta, run_training
from twostream.train import seed_everything


def main(args, params):
    seed_everything(params.seed)
    images = Path(args.images)
    augment = params.augment if params.train_spatial.augment else None
    train_set = FrameDataset(stanford40_split(images, "train"), augment)
    val_set = FrameDataset(stanford40_split(images, "val"), None)
    model = spatial_model(NUM_CLASSES, pretrained=params.model.pretrained == "imagenet")
    meta = model_meta("spatial", model, "stanford40", STANFORD40_CLASSES, params)
    run_training("train_spatial", model, train_set, val_set, params, Path(args.out), Path(args.live), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--images", required=True, help="pad_resize's output directory")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--live", required=True, help="DVCLive directory for the training curves")
    run_stage(main, parser)
