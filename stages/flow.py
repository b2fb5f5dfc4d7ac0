"""Stage flow: 8 optical-flow images per HMDB51 clip from its 9 flow frames."""
import shutil
from pathlib import Path

from twostream.cli import log, run_stage, stage_parser
from twostream.data.splits import SPLITS
from twostream.flow import flow_images
from twostream.io import atomic_dir, load_array, open_array


def main(args, params):
    frames_dir = Path(args.frames)
    log.info("flow method %s on %s", params.flow.method, params.flow.device)
    with atomic_dir(args.out) as tmp:
        for split in SPLITS:
            frames = load_array(frames_dir / f"hmdb51_{split}_flow_frames.npy")
            n, _, size, _, channels = frames.shape
            with open_array(tmp / f"hmdb51_{split}.npy", (n, frames.shape[1] - 1, size, size, channels)) as out:
                flow_images(frames, params.flow, out=out)
            shutil.copyfile(frames_dir / f"hmdb51_{split}.csv", tmp / f"hmdb51_{split}.csv")


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
