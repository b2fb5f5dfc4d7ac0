"""Stage hmdb51_frames: the Stanford40 frame model fine-tuned on HMDB51 frames (all layers trainable) once at
each of the five frame positions, one after the other in one process: the frame-position study. The
model at params `frames.position` is the pipeline's HMDB51 frame model.

Each position starts from the same Stanford40 model with the RNGs seeded afresh, so its model is what a
process of its own would train; one process saves starting Python, torch and DVC four more times."""
from pathlib import Path

from twostream import distributed
from twostream.checkpoint import checkpoint_meta, load_model, preprocess_meta, rebuild, spec_of
from twostream.cli import log, run_stage, stage_parser
from twostream.datasets import FrameDataset, hmdb51_subset
from twostream.model_table import BY_STAGE, model_path
from twostream.params import FRAME_POSITIONS
from twostream.train import seed_everything, stage_params, train_stage

STAGE = "hmdb51_frames"


def main(args, params, runtime):
    entry, frames, init = BY_STAGE[STAGE], Path(args.frames), Path(args.init)
    augment = params.augment if params.hmdb51_frames.augment else None
    train, val = hmdb51_subset(frames, None, "train"), hmdb51_subset(frames, None, "val")
    _, checkpoint = load_model(init)  # read and checked once, before any output is written
    with distributed.process_group(runtime.device):  # one process group (torchrun) for the five
        for i, position in enumerate(args.positions, 1):
            log.info("%s: frame position %s (%d of %d)", STAGE, position, i, len(args.positions))
            seed_everything(params.seed)
            model = rebuild(checkpoint)  # builds the network: the RNGs' use as in a process of its own
            meta = checkpoint_meta(spec_of(checkpoint), model, entry.dataset, entry.classes, train.image_size,
                                   stage_params(params, STAGE, position=position), position=position,
                                   preprocess=preprocess_meta("video", train.image_size, position))
            train_stage(STAGE, model, FrameDataset(train, augment, position), FrameDataset(val, None, position),
                        params, runtime, model_path(Path(args.models), entry.name, position),
                        Path(args.curves) / position, meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--init", required=True, help="the trained Stanford40 frame model")
    parser.add_argument("--positions", nargs="+", choices=FRAME_POSITIONS, default=list(FRAME_POSITIONS),
                        help="frame positions to fine-tune at, in this order (default: all five, as the pipeline)")
    parser.add_argument("--models", required=True,
                        help="models directory: writes hmdb51_frames/<position>.pt for each position")
    parser.add_argument("--curves", required=True,
                        help="directory for the per-epoch curves (TSV), a subdirectory per position")
    run_stage(main, parser)
