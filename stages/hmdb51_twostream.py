"""Stage hmdb51_twostream: the fine-tuned frame model and the flow model joined by a 1x1 conv fusion."""
from pathlib import Path

from twostream.checkpoint import checkpoint_meta, load_model, preprocess_meta, read_flow_settings, spec_of
from twostream.classes import NUM_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.data import arrays
from twostream.datasets import TwoStreamDataset, hmdb51_subset
from twostream.model_table import BY_STAGE
from twostream.models import ModelSpec, build_model
from twostream.train import seed_everything, stage_params, train_stage

STAGE = "hmdb51_twostream"


def main(args, params, runtime):
    seed_everything(params.seed)
    entry, frames, flow, position = BY_STAGE[STAGE], Path(args.frames), Path(args.flow), params.frames.position
    augment = params.augment if params.hmdb51_twostream.augment else None
    train, val = hmdb51_subset(frames, flow, "train"), hmdb51_subset(frames, flow, "val")
    (spatial, spatial_checkpoint), (temporal, _) = load_model(Path(args.spatial)), load_model(Path(args.temporal))
    spec = ModelSpec(entry.kind, NUM_CLASSES, pretrained=False,
                     transform_input=spec_of(spatial_checkpoint).transform_input)
    model = build_model(spec, streams=(spatial, temporal))
    meta = checkpoint_meta(spec, model, entry.dataset, entry.classes, train.image_size,
                           stage_params(params, STAGE, position=position), position=position,
                           preprocess=preprocess_meta("video", train.image_size, position,
                                                      flow=read_flow_settings(flow / arrays.FLOW_SETTINGS)))
    train_stage(STAGE, model, TwoStreamDataset(train, augment, position), TwoStreamDataset(val, None, position),
                params, runtime, Path(args.out), Path(args.curves), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--flow", required=True, help="flow stage's output directory")
    parser.add_argument("--spatial", required=True, help="the fine-tuned HMDB51 frame model")
    parser.add_argument("--temporal", required=True, help="the HMDB51 flow model")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--curves", required=True, help="directory for the per-epoch curves (TSV)")
    run_stage(main, parser)
