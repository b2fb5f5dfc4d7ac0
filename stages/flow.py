"""Stage flow: 8 optical-flow images per HMDB51 clip from its 9 flow frames (under torchrun, each
process computes a contiguous share of the clips of every array; rank 0 writes the directory)."""
from pathlib import Path

from twostream.cli import log, run_stage, stage_parser
from twostream.data.manifests import manifest_name, read_manifest, write_manifest
from twostream.distributed import is_main, process_group, shared_array, shared_dir
from twostream.flow import flow_shard
from twostream.io import load_array
from twostream.params import FLOW_PAIRS, SUBSETS


def main(args, params, runtime):
    frames_dir = Path(args.frames)
    log.info("flow method %s, device %s", params.flow.method, runtime.device)
    with process_group(runtime.device), shared_dir(args.out) as tmp:
        for subset in SUBSETS:
            name = manifest_name("hmdb51", subset)
            manifest = read_manifest(frames_dir / name, "hmdb51")
            frames = load_array(frames_dir / f"hmdb51_{subset}_flow_frames.npy")
            n, _, size, _, channels = frames.shape
            with shared_array(tmp / f"hmdb51_{subset}.npy", (n, FLOW_PAIRS, size, size, channels)) as out:
                flow_shard(frames, params.flow, out=out, progress=runtime.progress, device=runtime.device,
                           batch_size=runtime.flow_batch_size)
            if is_main():
                write_manifest(manifest, tmp / name)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--frames", required=True, help="sample_frames' output directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
