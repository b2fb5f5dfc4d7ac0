"""Throughput of the pipeline's hot paths against the compute floor: `make bench` (or --help).

Each hot path is timed end to end through the code the stage runs, and its model alone on
inputs already on the device (the floor: what the path could reach if data handling cost
nothing), in the same run; the ratio says how much of the floor the path reaches:

- flow (RAFT): pairs/s through `flow.flow_images` (batching, flow_to_image, array writes) vs
  RAFT's forward on device-resident batches of runtime.yaml `flow_batch_size` pairs;
- training, per model: samples/s through the DataLoader (runtime.yaml workers, pinned memory)
  and `train.train_epoch` vs a bare forward+backward+Adam step on a device-resident batch;
- data loading: samples/s of each training stage's DataLoader alone (decode from the arrays,
  augmentation in the workers) next to the model step it feeds (> 100%: loading keeps up);
- and the data stages' own rates: pad+resize, clip decoding, DIS and Farneback flow.

Both sides use what the stage uses: the device (runtime.yaml), bf16 autocast when
params.yaml `train.amp`, NHWC when runtime.yaml `channels_last`. Targets on a GPU: flow >= 70%
of raw RAFT, training >= 80% of the raw step. On a CPU the defaults are small (short runs); the
flags scale them up (e.g. --size 224 --flow-size 224 --clips 8 --steps 8).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from twostream.classes import NUM_CLASSES
from twostream.data.images import pad_resize
from twostream.data.video import sample_video
from twostream.datasets import FlowDataset, FrameDataset, LazyArray, SubsetArrays, TwoStreamDataset
from twostream.device import resolve_device
from twostream.flow import flow_images
from twostream.models import TwoStream, spatial_model, temporal_model
from twostream.params import FLOW_FRAMES, FLOW_PAIRS, RAFT_MIN_SIZE, FlowParams, load_params, load_runtime
from twostream.train import _autocast, make_loader, place_model, train_epoch
from twostream.transforms import frame_transform


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rate(fn, count: int, repeat: int = 3, device: torch.device | None = None) -> float:
    """Best items/s over `repeat` runs of fn() (which processes `count` items), after a warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        if device is not None:
            sync(device)
        start = time.perf_counter()
        fn()
        if device is not None:
            sync(device)
        best = min(best, time.perf_counter() - start)
    return count / best


def write_clip(path: Path, frames: int, rng: np.random.Generator) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FMP4"), 30, (320, 240))
    base = cv2.GaussianBlur(rng.integers(0, 256, (240, 400, 3), dtype=np.uint8), (0, 0), 3)
    for i in range(frames):
        writer.write(np.ascontiguousarray(base[:, 2 * i % 80: 2 * i % 80 + 320]))
    writer.release()


def moving_frames(rng: np.random.Generator, clips: int, size: int) -> np.ndarray:
    """(clips, 9, size, size, 3) uint8: smooth texture moving 2 px per frame."""
    base = cv2.GaussianBlur(rng.integers(0, 256, (size, size + 2 * FLOW_FRAMES, 3), dtype=np.uint8), (0, 0), 2)
    video = np.stack([base[:, 2 * k:2 * k + size] for k in range(FLOW_FRAMES)])
    return np.ascontiguousarray(np.broadcast_to(video, (clips, *video.shape)))


def line(name: str, unit: str, value: float, floor: float | None = None, floor_name: str = "raw",
         of: str = "the floor") -> str:
    text = f"{name}: {value:.3g} {unit}"
    if floor is not None:
        text += f", {floor_name} {floor:.3g} {unit}, {100 * value / floor:.0f}% of {of}"
    return text


def bench_raft(method: str, updates: int, clips: int, size: int, batch: int, device: torch.device,
               repeat: int) -> tuple[float, float]:
    """(end-to-end pairs/s through flow_images, raw RAFT forward pairs/s), same weights file and batch."""
    from torchvision.models.optical_flow import Raft_Large_Weights

    from twostream.flow import _raft_model
    from twostream.weights import weights_path, write_standins

    weights = Raft_Large_Weights.DEFAULT
    if not weights_path(weights).is_file():  # time with a stand-in (the same network, random values)
        os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="twostream-bench-")
        write_standins(os.environ["TORCH_HOME"], only=[weights])
    params = FlowParams(method=method, pretrained=True, raft_updates=updates)
    frames = moving_frames(np.random.default_rng(1), clips, size)
    out = np.empty((clips, FLOW_PAIRS, size, size, 3), np.uint8)
    pairs = clips * FLOW_PAIRS
    end_to_end = rate(lambda: flow_images(frames, params, out=out, progress=False, device=str(device),
                                          batch_size=batch), pairs, repeat, device)
    model = _raft_model(method, params.pretrained, device)
    first = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    second = torch.roll(first, 2, dims=3)

    def raw():
        with torch.inference_mode():
            for _ in range(0, pairs, batch):
                model(first, second, num_flow_updates=updates)[-1].float()
    return end_to_end, rate(raw, pairs, repeat, device)


def training_sets(tmp: Path, n: int, size: int, augment) -> dict[str, object]:
    """The three training stages' datasets over small arrays on disk (memmapped, as in the stages)."""
    rng = np.random.default_rng(2)
    labels = rng.integers(0, NUM_CLASSES, n)
    arrays = {"frames": (n, size, size, 3), "positions": (n, 5, size, size, 3), "flow": (n, FLOW_PAIRS, size, size, 3)}
    lazy = {}
    for name, shape in arrays.items():
        np.save(tmp / f"{name}.npy", rng.integers(0, 256, shape, dtype=np.uint8))
        lazy[name] = LazyArray(tmp / f"{name}.npy")
    manifest = tmp / "manifest.csv"
    return {
        "spatial": FrameDataset(SubsetArrays({"frames": lazy["frames"]}, labels, manifest), augment),
        "temporal": FlowDataset(SubsetArrays({"flow": lazy["flow"]}, labels, manifest)),
        "fusion": TwoStreamDataset(SubsetArrays({"positions": lazy["positions"], "flow": lazy["flow"]}, labels,
                                                manifest), augment, "middle"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runtime", default="runtime.yaml")
    parser.add_argument("--size", type=int, help="training image size (default: image.size from params)")
    parser.add_argument("--flow-size", type=int, help=f"RAFT frame size (default: image.size, at least {RAFT_MIN_SIZE})")
    parser.add_argument("--raft", default="raft_large", choices=["raft_large", "none"],
                        help="none: skip RAFT (the slowest part on a CPU)")
    parser.add_argument("--updates", type=int, help="RAFT updates (default: flow.raft_updates)")
    parser.add_argument("--clips", type=int, help="RAFT clips of 8 pairs (default: 2 on a CPU, 64 on CUDA)")
    parser.add_argument("--batch", type=int, help="training batch (default: train.batch_size)")
    parser.add_argument("--steps", type=int, help="training batches timed per model (default: 3 on a CPU, 50 on CUDA)")
    parser.add_argument("--repeat", type=int, help="timed runs, best kept (default: 1 on a CPU, 3 on CUDA)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    params, runtime = load_params(args.params), load_runtime(args.runtime)
    device = resolve_device(runtime.device)
    gpu = device.type == "cuda"
    size = args.size or params.image.size
    flow_size = args.flow_size or max(RAFT_MIN_SIZE, params.image.size)
    clips = args.clips or (64 if gpu else 2)
    steps = args.steps or (50 if gpu else 3)
    repeat = args.repeat or (3 if gpu else 1)
    batch = args.batch or params.train.batch_size
    updates = args.updates or params.flow.raft_updates
    amp, channels_last = params.train.amp, runtime.channels_last
    rng = np.random.default_rng(0)
    results: dict[str, float] = {}
    print(f"twostream benchmark: device {device}, torch threads {torch.get_num_threads()}, training {size} px "
          f"batch {batch}, RAFT {flow_size} px batch {runtime.flow_batch_size}, {runtime.num_workers} loader "
          f"worker(s), amp {amp}, channels_last {channels_last}")

    def report(key: str, text: str, value: float, floor: float | None = None) -> None:
        results[key] = value
        if floor is not None:
            results[f"{key} raw"] = floor
        print("  " + text, flush=True)

    # --- data stages (CPU) ---
    image = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    value = rate(lambda: [pad_resize(image, size) for _ in range(200)], 200)
    report("pad_resize images/s", line("pad_resize", "images/s", value), value)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.avi"
        write_clip(clip, 60, rng)
        value = rate(lambda: sample_video(clip, size), 1)
        report("sample_frames clips/s", line("sample_frames (60-frame clips)", "clips/s", value), value)
    frames = moving_frames(rng, 16, size)
    for method in ("dis", "farneback"):
        flow_params = FlowParams(method=method, pretrained=False, raft_updates=1)
        value = rate(lambda: flow_images(frames, flow_params, progress=False), 16 * FLOW_PAIRS)
        report(f"flow {method} pairs/s", line(f"flow {method}", "pairs/s", value), value)

    # --- RAFT flow: flow_images vs the raw forward ---
    if args.raft != "none":
        end_to_end, raw = bench_raft(args.raft, updates, clips, flow_size, runtime.flow_batch_size, device, repeat)
        report(f"flow {args.raft} pairs/s",
               line(f"flow {args.raft} ({updates} updates)", "pairs/s", end_to_end, raw), end_to_end, raw)

    # --- augmentation, single-threaded as in a DataLoader worker ---
    train_tf = frame_transform(params.augment)
    sample = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    value = rate(lambda: [train_tf(sample) for _ in range(100)], 100)
    report("augmentation samples/s", line("augmentation (1 thread)", "samples/s", value), value)
    torch.set_num_threads(threads)

    # --- training: DataLoader + train_epoch vs the bare step; the loader alone ---
    n = batch * steps
    with tempfile.TemporaryDirectory() as tmp:
        datasets = training_sets(Path(tmp), n, size, params.augment)
        for name, dataset in datasets.items():
            def fresh(name=name):
                """The model and optimizer from the same initial state: the speed of a CPU step depends on
                the weights (denormal floats appear after some Adam steps), so each side starts alike."""
                torch.manual_seed(0)
                spatial, temporal = spatial_model(NUM_CLASSES, False), temporal_model(NUM_CLASSES, False)
                model = {"spatial": spatial, "temporal": temporal,
                         "fusion": TwoStream(spatial, temporal, NUM_CLASSES)}[name]
                place_model(model, device, channels_last)
                model.train()
                return model, torch.optim.Adam(model.parameters(), 1e-4)

            model, optimizer = fresh()
            loader = make_loader(dataset, batch, dataclasses.replace(runtime, progress=False), shuffle=True, seed=0,
                                 device=device)

            def epoch():
                train_epoch(model, loader, optimizer, device, amp, progress=False, channels_last=channels_last)

            end_to_end = rate(epoch, len(loader) * batch, repeat, device)
            x, _ = next(iter(loader))
            inputs = tuple(t.to(device) for t in (x if isinstance(x, (tuple, list)) else (x,)))
            if channels_last:
                inputs = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
            y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
            model, optimizer = fresh()

            def step():
                for _ in range(steps):
                    with _autocast(device, amp):
                        logits = model(*inputs)
                    loss = torch.nn.functional.cross_entropy(logits.float(), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            raw = rate(step, n, repeat, device)
            report(f"train {name} samples/s", line(f"train {name}", "samples/s", end_to_end, raw), end_to_end, raw)

            def load():
                for _ in loader:
                    pass
            value = rate(load, len(loader) * batch, repeat)
            report(f"loader {name} samples/s",
                   line(f"loader {name} ({runtime.num_workers} worker(s))", "samples/s", value, raw, "model step",
                        "the model step"), value)
            del loader
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "size": size, "flow_size": flow_size,
                                               "batch": batch, **results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
