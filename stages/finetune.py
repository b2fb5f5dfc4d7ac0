"""Stage finetune: the Stanford40 frame model fine-tuned on HMDB51 frames (all layers trainable).

Also the frame-position study: with --position it trains on another study frame, and
with --metrics it scores the HMDB51 test set at that position.
"""
from pathlib import Path

from twostream.classes import HMDB51_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.datasets import FrameDataset, hmdb51_split
from twostream.io import write_json
from twostream.params import FRAME_POSITIONS
from twostream.pipeline import evaluate_on_test, load_model, model_meta, run_training
from twostream.train import load_checkpoint, seed_everything


def main(args, params):
    seed_everything(params.seed)
    frames = Path(args.frames)
    position = args.position or params.frames.position
    augment = params.augment if params.finetune.augment else None
    train_set = FrameDataset(hmdb51_split(frames, None, "train"), augment, position)
    val_set = FrameDataset(hmdb51_split(frames, None, "val"), None, position)
    model, _ = load_model(Path(args.init))
    meta = model_meta("spatial", model, "hmdb51", HMDB51_CLASSES, params, position=position)
    run_training("finetune", model, train_set, val_set, params, Path(args.out),
                 Path(args.live) if args.live else None, meta)
    if args.metrics:
        checkpoint = load_checkpoint(Path(args.out))
        test_set = FrameDataset(hmdb51_split(frames, None, "test"), None, position)
        record, _, _ = evaluate_on_test(model, checkpoint, test_set, params)
        write_json(args.metrics, {"position": position, **record})


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--init", required=True, help="the trained Stanford40 frame model")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--live", help="DVCLive directory for the training curves")
    parser.add_argument("--position", choices=FRAME_POSITIONS, help="frame position (default: frames.position)")
    parser.add_argument("--metrics", help="also score the test set and write this metrics file")
    run_stage(main, parser)
