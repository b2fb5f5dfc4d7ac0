"""Stage flow: 8 optical-flow images per HMDB51 clip from its 9 flow frames, and a stack of 8 for each of the
K test clips of every test video (video-level testing). Under torchrun each process computes a contiguous
share of the rows of every array; rank 0 writes the directory, and flow.json: the flow settings (method, RAFT
weights and updates, frame sampling) that the training stages copy into their checkpoints."""
from pathlib import Path

import numpy as np

from twostream.cli import log, run_stage, stage_parser
from twostream.data import arrays
from twostream.data.manifests import manifest_name, read_manifest, write_manifest
from twostream.distributed import is_main, my_rows, process_group, shared_array, shared_dir
from twostream.errors import InputError
from twostream.flow import flow_settings, flow_shard
from twostream.io import load_array, same_array, write_json
from twostream.params import FLOW_PAIRS, SUBSETS


def flow_of_test_clips(frames_path: Path, out_path: Path, one_clip: tuple[np.ndarray, np.ndarray], params,
                       runtime) -> None:
    """(N, K, 9, S, S, 3) test-clip frames -> (N, K, 8, S, S, 3) flow images; each clip's stack has its own scale.
    `one_clip`: the one-clip test frames (N, 9, S, S, 3) and their flow (N, 8, S, S, 3), this process's rows
    (`my_rows`) done. Where the middle clip's frames are the same (odd K: `video.clip_centres`), each process
    copies its rows of that flow instead of computing them again."""
    frames, (one_frames, one_flow) = load_array(frames_path), one_clip
    n = len(one_frames)
    if frames.ndim != 6 or frames.shape[0] != n:
        raise InputError(f"{frames_path}: expected ({n}, K, 9, S, S, 3) test-clip frames, got shape {frames.shape}; "
                         f"re-run the sample_frames stage")
    k, stack = frames.shape[1], frames.shape[2:]
    copied = k // 2 if k % 2 and same_array(frames[:, k // 2], one_frames) else None
    log.info("hmdb51 test: %d clips per video%s", k, "" if copied is None else " (the middle one's flow: the one clip's)")
    with shared_array(out_path, (n, k, FLOW_PAIRS, *stack[1:])) as out:
        for clip in range(k):
            if clip == copied:
                rows = my_rows(n)
                out[rows, clip] = one_flow[rows]
            else:
                flow_shard(frames[:, clip], params.flow, out=out[:, clip], progress=runtime.progress,
                           device=runtime.device, batch_size=runtime.flow_batch_size)


def main(args, params, runtime):
    frames_dir = Path(args.frames)
    log.info("flow method %s, device %s", params.flow.method, runtime.device)
    with process_group(runtime.device), shared_dir(args.out) as tmp:
        for subset in SUBSETS:
            name = manifest_name("hmdb51", subset)
            manifest = read_manifest(frames_dir / name, "hmdb51")
            frames = load_array(frames_dir / arrays.flow_frames(subset))
            n, _, size, _, channels = frames.shape
            with shared_array(tmp / arrays.flow(subset), (n, FLOW_PAIRS, size, size, channels)) as out:
                flow_shard(frames, params.flow, out=out, progress=runtime.progress, device=runtime.device,
                           batch_size=runtime.flow_batch_size)
                if subset == "test":
                    flow_of_test_clips(frames_dir / arrays.clip_flow_frames(), tmp / arrays.clip_flow(), (frames, out),
                                       params, runtime)
            if is_main():
                write_manifest(manifest, tmp / name)
        if is_main():  # what the flow was computed with: the training stages record it in their checkpoints
            write_json(tmp / arrays.FLOW_SETTINGS, flow_settings(params.flow))


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
