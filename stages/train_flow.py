"""Stage train_flow: ResNet-18 on stacks of 8 flow images (24 channels), HMDB51."""
from pathlib import Path

from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.datasets import FlowDataset, hmdb51_split
from twostream.models import temporal_model
from twostream.pipeline import model_meta, run_training
from twostream.train import seed_everything


def main(args, params):
    seed_everything(params.seed)
    flow = Path(args.flow)
    train_set = FlowDataset(hmdb51_split(None, flow, "train"))
    val_set = FlowDataset(hmdb51_split(None, flow, "val"))
    model = temporal_model(NUM_CLASSES, pretrained=params.model.pretrained == "imagenet")
    meta = model_meta("temporal", model, "hmdb51", HMDB51_CLASSES, params)
    run_training("train_flow", model, train_set, val_set, params, Path(args.out), Path(args.live), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--flow", required=True, help="flow stage's output directory")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--live", required=True, help="DVCLive directory for the training curves")
    run_stage(main, parser)
