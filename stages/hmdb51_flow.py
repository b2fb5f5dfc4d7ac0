"""Stage hmdb51_flow: ResNet-18 on stacks of 8 flow images (24 channels), HMDB51."""
from pathlib import Path

from twostream.checkpoint import checkpoint_meta, preprocess_meta, read_flow_settings
from twostream.classes import NUM_CLASSES
from twostream.cli import run_stage, stage_parser
from twostream.data import arrays
from twostream.datasets import FlowDataset, hmdb51_subset
from twostream.model_table import BY_STAGE
from twostream.models import ModelSpec, build_model
from twostream.train import seed_everything, stage_params, train_stage

STAGE = "hmdb51_flow"


def main(args, params, runtime):
    seed_everything(params.seed)
    entry, flow = BY_STAGE[STAGE], Path(args.flow)
    train, val = hmdb51_subset(None, flow, "train"), hmdb51_subset(None, flow, "val")
    spec = ModelSpec.fresh(entry.kind, NUM_CLASSES, params.model)
    model = build_model(spec)
    meta = checkpoint_meta(spec, model, entry.dataset, entry.classes, train.image_size, stage_params(params, STAGE),
                           preprocess=preprocess_meta("video", train.image_size,
                                                      flow=read_flow_settings(flow / arrays.FLOW_SETTINGS)))
    train_stage(STAGE, model, FlowDataset(train, params.hmdb51_flow.augment), FlowDataset(val), params, runtime, Path(args.out),
                Path(args.curves), meta)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--flow", required=True, help="flow stage's output directory")
    parser.add_argument("--out", required=True, help="model file to write")
    parser.add_argument("--curves", required=True, help="directory for the per-epoch curves (TSV)")
    run_stage(main, parser)
