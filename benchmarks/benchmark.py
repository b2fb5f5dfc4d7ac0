"""Throughput of the pipeline's hot paths on this machine: `make bench` (or run with --help).

Times, on generated inputs of the configured image size: pad+resize (images/s), clip
decoding and frame sampling (clips/s), optical flow per method (clips/s), the
augmentation transform (samples/s), and a training step of each model (samples/s).
Prints a table; --json writes the figures too.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from twostream.classes import NUM_CLASSES
from twostream.data.images import pad_resize
from twostream.data.video import sample_video
from twostream.flow import flow_images
from twostream.models import TwoStream, spatial_model, temporal_model
from twostream.params import load_params
from twostream.transforms import frame_transform


def rate(fn, count: int, repeat: int = 3) -> float:
    """Best items/s over `repeat` runs of fn() (which processes `count` items)."""
    fn()  # warm-up
    best = min(_timed(fn) for _ in range(repeat))
    return count / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_clip(path: Path, frames: int, rng: np.random.Generator) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FMP4"), 30, (320, 240))
    base = cv2.GaussianBlur(rng.integers(0, 256, (240, 400, 3), dtype=np.uint8), (0, 0), 3)
    for i in range(frames):
        writer.write(np.ascontiguousarray(base[:, 2 * i % 80: 2 * i % 80 + 320]))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--size", type=int, help="image size (default: image.size from params)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    params = load_params(args.params)
    size = args.size or params.image.size
    rng = np.random.default_rng(0)
    results: dict[str, float] = {}

    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    results["pad_resize images/s"] = rate(lambda: [pad_resize(image, size) for _ in range(200)], 200)

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        write_clip(clip, 60, rng)
        results["sample_frames clips/s (60 frames)"] = rate(lambda: sample_video(clip, size), 1)

    frames = rng.integers(0, 256, (16, 9, size, size, 3), dtype=np.uint8)
    frames = np.stack([np.roll(frames[:, 0], 2 * k, axis=2) for k in range(9)], axis=1)
    for method in ("dis", "farneback"):
        flow_params = type(params.flow)(method=method, pretrained=False, raft_updates=params.flow.raft_updates,
                                        batch_size=params.flow.batch_size, device=params.flow.device)
        results[f"flow {method} clips/s"] = rate(lambda: flow_images(frames, flow_params, progress=False), 16)

    train_tf = frame_transform(params.augment)
    sample = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a DataLoader worker
    results["augmentation samples/s (1 thread)"] = rate(lambda: [train_tf(sample) for _ in range(100)], 100)
    torch.set_num_threads(threads)

    b = args.batch
    x_rgb, x_flow = torch.randn(b, 3, size, size), torch.randn(b, 24, size, size)
    y = torch.randint(0, NUM_CLASSES, (b,))
    spatial, temporal = spatial_model(NUM_CLASSES, False), temporal_model(NUM_CLASSES, False)
    models = {"spatial": (spatial, (x_rgb,)), "temporal": (temporal, (x_flow,)),
              "fusion": (TwoStream(spatial, temporal, NUM_CLASSES), (x_rgb, x_flow))}
    for name, (model, inputs) in models.items():
        optimizer = torch.optim.Adam(model.parameters(), 1e-4)

        def step(model=model, inputs=inputs, optimizer=optimizer):
            loss = torch.nn.functional.cross_entropy(model(*inputs), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.train()
        results[f"train step {name} samples/s"] = rate(step, b)

    print(f"twostream benchmark: image size {size}, batch {b}, torch threads {torch.get_num_threads()}")
    for key, value in results.items():
        print(f"  {key:<40} {value:10.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"size": size, "batch": b, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
