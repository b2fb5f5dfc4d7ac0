"""Stage finetune: the Stanford40 frame model fine-tuned on HMDB51 frames at frames.position (all layers)."""
from pathlib import Path

from twostream.classes import HMDB51_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.datasets import FrameDataset, hmdb51_split
from twostream.pipeline import load_model, model_meta, run_training
from twostream.train import seed_everything


def main(args, params):
    seed_everything(params.seed)
    frames, position = Path(args.frames), params.frames.position
    augment = params.augment if params.finetune.augment else None
    train_set = FrameDataset(hmdb51_split(frames, None, "train"), augment, position)
    val_set = FrameDataset(hmdb51_split(frames, None, "val"), None, position)
    model, _ = load_model(Path(args.init))
    meta = model_meta("spatial", model, "hmdb51", HMDB51_CLASSES, params, position=position)
    run_training("finetune", model, train_set, val_set, params, Path(args.out), Path(args.live), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--init", required=True, help="the trained Stanford40 frame model")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--live", required=True, help="DVCLive directory for the training curves")
    run_stage(main, parser)
