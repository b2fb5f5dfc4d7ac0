"""Stage finetune@<position>: the Stanford40 frame model fine-tuned on HMDB51 frames at one frame
position (all layers trainable). The model at params `frames.position` is the pipeline's HMDB51
frame model; the five together are the frame-position study."""
from pathlib import Path

from twostream.checkpoint import checkpoint_meta, load_model, spec_of
from twostream.cli import run_stage, stage_parser
from twostream.datasets import FrameDataset, hmdb51_subset
from twostream.model_table import BY_STAGE
from twostream.params import FRAME_POSITIONS
from twostream.train import seed_everything, stage_params, train_stage

STAGE = "finetune"


def main(args, params, runtime):
    seed_everything(params.seed)
    entry, frames = BY_STAGE[STAGE], Path(args.frames)
    augment = params.augment if params.finetune.augment else None
    train, val = hmdb51_subset(frames, None, "train"), hmdb51_subset(frames, None, "val")
    model, init = load_model(Path(args.init))
    meta = checkpoint_meta(spec_of(init), model, entry.dataset, entry.classes, train.image_size,
                           stage_params(params, STAGE, position=args.position), position=args.position)
    train_stage(STAGE, model, FrameDataset(train, augment, args.position), FrameDataset(val, None, args.position),
                params, runtime, Path(args.out), Path(args.curves), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--init", required=True, help="the trained Stanford40 frame model")
    parser.add_argument("--position", required=True, choices=FRAME_POSITIONS, help="frame position")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--curves", required=True, help="directory for the per-epoch curves (TSV)")
    run_stage(main, parser)
