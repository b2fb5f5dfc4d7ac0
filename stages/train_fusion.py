"""Stage train_fusion: the fine-tuned frame model and the flow model joined by a 1x1 conv fusion."""
from pathlib import Path

from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.datasets import TwoStreamDataset, hmdb51_split
from twostream.models import TwoStream
from twostream.pipeline import load_model, model_meta, run_training
from twostream.train import seed_everything


def main(args, params):
    seed_everything(params.seed)
    frames, flow, position = Path(args.frames), Path(args.flow), params.frames.position
    augment = params.augment if params.train_fusion.augment else None
    train_set = TwoStreamDataset(hmdb51_split(frames, flow, "train"), augment, position)
    val_set = TwoStreamDataset(hmdb51_split(frames, flow, "val"), None, position)
    spatial, _ = load_model(Path(args.spatial))
    temporal, _ = load_model(Path(args.temporal))
    model = TwoStream(spatial, temporal, NUM_CLASSES)
    meta = model_meta("twostream", model, "hmdb51", HMDB51_CLASSES, params, position=position)
    run_training("train_fusion", model, train_set, val_set, params, Path(args.out), Path(args.live), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--flow", required=True, help="flow stage's output directory")
    parser.add_argument("--spatial", required=True, help="the fine-tuned HMDB51 frame model")
    parser.add_argument("--temporal", required=True, help="the HMDB51 flow model")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--live", required=True, help="DVCLive directory for the training curves")
    run_stage(main, parser)
