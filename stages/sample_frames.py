"""Stage sample_frames: per HMDB51 clip, the 5 study frames and the 9 flow frames, padded+resized; per test
clip also the frame and the 9 flow frames of each of `video_test.clips` clips spread over the video."""
import contextlib
from pathlib import Path

from tqdm import tqdm

from twostream.cli import log, run_stage, stage_parser
from twostream.data import arrays
from twostream.data.manifests import manifest_name, read_manifest, write_manifest
from twostream.data.video import sample_videos
from twostream.io import atomic_dir, open_array
from twostream.params import FLOW_FRAMES, FRAME_POSITIONS, SUBSETS


def main(args, params, runtime):
    root, size = Path(args.raw), params.image.size
    with atomic_dir(args.out) as tmp:
        for subset in SUBSETS:
            name = manifest_name("hmdb51", subset)
            manifest = read_manifest(Path(args.manifests) / name, "hmdb51")
            n_clips, frame = len(manifest), (size, size, 3)
            k = params.video_test.clips if subset == "test" else 0  # test clips per video (test subset only)
            counts = []
            with open_array(tmp / arrays.positions(subset), (n_clips, len(FRAME_POSITIONS), *frame)) as positions, \
                    open_array(tmp / arrays.flow_frames(subset), (n_clips, FLOW_FRAMES, *frame)) as flow_frames, \
                    contextlib.ExitStack() as clip_arrays:
                if k:
                    clip_frames = clip_arrays.enter_context(
                        open_array(tmp / arrays.clip_frames(subset), (n_clips, k, *frame)))
                    clip_flow_frames = clip_arrays.enter_context(
                        open_array(tmp / arrays.clip_flow_frames(subset), (n_clips, k, FLOW_FRAMES, *frame)))
                clips = sample_videos([root / p for p in manifest["path"]], size, runtime.cpu_processes(), clips=k)
                for i, sample in enumerate(tqdm(
                        clips, total=n_clips, desc=f"hmdb51 {subset}", unit="video", disable=not runtime.progress)):
                    positions[i], flow_frames[i] = sample.positions, sample.flow_frames
                    if k:
                        clip_frames[i], clip_flow_frames[i] = sample.clip_frames, sample.clip_flow_frames
                    counts.append(sample.n)
            write_manifest(manifest.assign(n_frames=counts), tmp / name)
            log.info("hmdb51 %s: %d clips, %d-%d decodable frames", subset, len(counts), min(counts), max(counts))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", required=True, help="raw HMDB51 directory")
    parser.add_argument("--manifests", required=True, help="the split stage's manifest directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
