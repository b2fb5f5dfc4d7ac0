"""Peak memory (RSS) of `sample_video`, the per-clip work of sample_frames, on one long 720p clip.

    python benchmarks/sample_frames_memory.py [--frames 1500] [--size 224] [--clips 1 10]

Writes a 1280x720 MPEG-4 AVI of `--frames` frames at 30 fps (a blurred texture panning 2 px per
frame) into a temporary directory, then runs `sample_video(clip, size, clips=K)` for each K in a
fresh Python process and prints that process's peak resident set size (ru_maxrss), next to the
peak of a process that only imports the same modules (the interpreter, NumPy, OpenCV, PyAV).
sample_frames runs one such decode per worker process (runtime.yaml `prep_processes`).
"""
from __future__ import annotations

import argparse
import fractions
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

MEASURE = """
import resource, sys
from pathlib import Path
from twostream.data.video import sample_video
if sys.argv[2] != "none":
    sample = sample_video(Path(sys.argv[1]), int(sys.argv[3]), clips=int(sys.argv[2]))
    assert sample.n > 0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_clip(path: Path, frames: int, width: int = 1280, height: int = 720) -> None:
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 2 * frames, 3), dtype=np.uint8), (0, 0), 3)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = fractions.Fraction(1, 30)
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, 2 * k:2 * k + width]), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def peak_rss_mib(clip: Path, clips: str, size: int) -> float:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(clip), clips, str(size)], check=True,
                         capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--size", type=int, default=224, help="padded frame side (params.yaml image.size)")
    parser.add_argument("--clips", type=int, nargs="+", default=[1, 10], help="test clips per video (video_test.clips)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip_720p.avi"
        write_clip(clip, args.frames)
        print(f"clip: 1280x720, {args.frames} frames, {clip.stat().st_size / 2**20:.1f} MiB")
        print(f"imports only: peak RSS {peak_rss_mib(clip, 'none', args.size):.0f} MiB")
        for k in args.clips:
            print(f"sample_video(size={args.size}, clips={k}): peak RSS {peak_rss_mib(clip, str(k), args.size):.0f} MiB")


if __name__ == "__main__":
    main()
