"""Stage sample_frames: per HMDB51 clip, the 5 study frames and the 9 flow frames, padded+resized."""
from pathlib import Path

from tqdm import tqdm

from twostream.cli import log, run_stage, stage_parser
from twostream.data.splits import COLUMNS, SPLITS
from twostream.data.video import FLOW_FRAMES, sample_video
from twostream.io import atomic_dir, open_array, read_csv
from twostream.params import FRAME_POSITIONS


def main(args, params):
    root, size = Path(args.raw), params.image.size
    with atomic_dir(args.out) as tmp:
        for split in SPLITS:
            manifest = read_csv(Path(args.manifests) / f"hmdb51_{split}.csv", COLUMNS)
            n_clips, frame = len(manifest), (size, size, 3)
            counts = []
            positions_path, flow_path = tmp / f"hmdb51_{split}_positions.npy", tmp / f"hmdb51_{split}_flow_frames.npy"
            with open_array(positions_path, (n_clips, len(FRAME_POSITIONS), *frame)) as positions, \
                    open_array(flow_path, (n_clips, FLOW_FRAMES, *frame)) as flow_frames:
                for i, path in enumerate(tqdm(manifest["path"], desc=f"hmdb51 {split}", unit="video")):
                    n, positions[i], flow_frames[i] = sample_video(root / path, size)
                    counts.append(n)
            manifest.assign(n_frames=counts).to_csv(tmp / f"hmdb51_{split}.csv", index=False)
            log.info("hmdb51 %s: %d clips, %d-%d decodable frames", split, len(counts), min(counts), max(counts))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", required=True, help="raw HMDB51 directory")
    parser.add_argument("--manifests", required=True, help="split's manifest directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
