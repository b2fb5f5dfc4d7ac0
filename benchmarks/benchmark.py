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

Sweeps: --flow-batch, --batch and --precision take several values (RAFT per flow batch; each
model per batch and precision, fp32 or bf16 autocast); --parts picks what is timed; --deadline
skips what is left once that many seconds have passed (listed under "skipped" in --json, which is
rewritten after every measurement). `benchmarks/gpu_check.sh` runs the full setting's sweep on a GPU.
cuDNN is set as the training stages set it (twostream.train.seed_everything).
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
from twostream.io import write_json
from twostream.models import TwoStream, spatial_model, temporal_model
from twostream.params import FLOW_FRAMES, FLOW_PAIRS, RAFT_MIN_SIZE, FlowParams, load_params, load_runtime
from twostream.train import _autocast, make_loader, make_optimizer, place_model, seed_everything, train_epoch
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


def peak_memory(device: torch.device) -> int | None:
    """Peak bytes torch allocated on the CUDA device since the last reset (None on the CPU)."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def bench_raft(method: str, updates: int, clips: int, size: int, batches: list[int], device: torch.device,
               repeat: int, time_left=lambda: float("inf")):
    """Per flow batch size: (batch, end-to-end pairs/s through flow_images, raw RAFT forward pairs/s,
    peak bytes), same weights file; a batch size is skipped (None rates) once time_left() <= 0."""
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
    model = _raft_model(method, params.pretrained, device)
    for batch in batches:
        if time_left() <= 0:
            yield batch, None, None, None
            continue
        reset_peak(device)
        end_to_end = rate(lambda: flow_images(frames, params, out=out, progress=False, device=str(device),
                                              batch_size=batch), pairs, repeat, device)
        first = torch.rand(batch, 3, size, size, device=device) * 2 - 1
        second = torch.roll(first, 2, dims=3)

        def raw():
            with torch.inference_mode():
                for _ in range(0, pairs, batch):
                    model(first, second, num_flow_updates=updates)[-1].float()
        raw_rate = rate(raw, pairs, repeat, device)
        yield batch, end_to_end, raw_rate, peak_memory(device)
        del first, second


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--runtime", default="runtime.yaml")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: runtime.yaml device")
    parser.add_argument("--parts", nargs="+", choices=["data", "raft", "train"], default=["data", "raft", "train"],
                        help="what to time (default: all)")
    parser.add_argument("--size", type=int, help="training image size (default: image.size from params)")
    parser.add_argument("--flow-size", type=int, help=f"RAFT frame size (default: image.size, at least {RAFT_MIN_SIZE})")
    parser.add_argument("--raft", default="raft_large", choices=["raft_large", "none"],
                        help="none: skip RAFT (the slowest part on a CPU)")
    parser.add_argument("--updates", type=int, help="RAFT updates (default: flow.raft_updates)")
    parser.add_argument("--clips", type=int, help="RAFT clips of 8 pairs (default: 2 on a CPU, 64 on CUDA)")
    parser.add_argument("--flow-batch", type=int, nargs="+", help="RAFT pairs per forward, one run each "
                        "(default: runtime.yaml flow_batch_size)")
    parser.add_argument("--batch", type=int, nargs="+", help="training batch(es) (default: train.batch_size)")
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16"],
                        help="training precision(s): bf16 autocast or none (default: params.yaml train.amp)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        help="NHWC models and inputs (default: runtime.yaml channels_last)")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default: runtime.yaml loader_workers)")
    parser.add_argument("--pin-memory", action=argparse.BooleanOptionalAction,
                        help="page-locked batches (default: runtime.yaml pin_memory)")
    parser.add_argument("--steps", type=int, help="training batches timed per model at the largest batch; smaller "
                        "batches take as many samples (default: 3 on a CPU, 50 on CUDA)")
    parser.add_argument("--repeat", type=int, help="timed runs, best kept (default: 1 on a CPU, 3 on CUDA)")
    parser.add_argument("--deadline", type=float, help="seconds after which the remaining measurements are "
                        "skipped (listed under 'skipped' in --json)")
    parser.add_argument("--json", help="also write the figures to this JSON file (rewritten after each measurement)")
    args = parser.parse_args(argv)
    for name in ("flow_batch", "batch"):
        if any(v <= 0 for v in getattr(args, name) or []):
            parser.error(f"--{name.replace('_', '-')} must be > 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.monotonic()

    def time_left() -> float:
        return float("inf") if args.deadline is None else args.deadline - (time.monotonic() - started)

    params, runtime = load_params(args.params), load_runtime(args.runtime)
    device = resolve_device(args.device or runtime.device)
    runtime = dataclasses.replace(
        runtime, progress=False,
        loader_workers=runtime.loader_workers if args.workers is None else args.workers,
        pin_memory=runtime.pin_memory if args.pin_memory is None else args.pin_memory,
        channels_last=runtime.channels_last if args.channels_last is None else args.channels_last)
    gpu = device.type == "cuda"
    size = args.size or params.image.size
    flow_size = args.flow_size or max(RAFT_MIN_SIZE, params.image.size)
    clips = args.clips or (64 if gpu else 2)
    steps = args.steps or (50 if gpu else 3)
    repeat = args.repeat or (3 if gpu else 1)
    batches = args.batch or [params.train.batch_size]
    flow_batches = args.flow_batch or [runtime.flow_batch_size]
    precisions = args.precision or ["bf16" if params.train.amp else "fp32"]
    updates = args.updates or params.flow.raft_updates
    channels_last = runtime.channels_last
    seed_everything(0)  # cuDNN as in the training stages (deterministic, no autotuning)
    rng = np.random.default_rng(0)
    results: dict = {
        "device": str(device), "device_name": torch.cuda.get_device_name(device) if gpu else None,
        "torch": torch.__version__, "torchvision": __import__("torchvision").__version__,
        "cuda": torch.version.cuda if gpu else None, "cudnn": torch.backends.cudnn.version() if gpu else None,
        "threads": torch.get_num_threads(), "size": size, "flow_size": flow_size, "raft_updates": updates,
        "flow_clips": clips, "workers": runtime.loader_workers, "pin_memory": runtime.pin_memory,
        "channels_last": channels_last, "repeat": repeat, "data": {}, "flow": [], "train": [], "loader": [],
        "skipped": [], "complete": False, "peak_memory_bytes": None}
    print(f"twostream benchmark: device {device}, torch threads {torch.get_num_threads()}, training {size} px "
          f"batch {'/'.join(map(str, batches))} {'/'.join(precisions)}, RAFT {flow_size} px batch "
          f"{'/'.join(map(str, flow_batches))}, {runtime.loader_workers} loader worker(s), channels_last "
          f"{channels_last}", flush=True)

    def save() -> None:
        if gpu:
            results["peak_memory_bytes"] = max(results["peak_memory_bytes"] or 0, torch.cuda.max_memory_allocated())
        if args.json:
            write_json(args.json, results)

    def skip(what: str) -> bool:
        if time_left() > 0:
            return False
        results["skipped"].append(what)
        print(f"  {what}: skipped (--deadline {args.deadline:g} s passed)", flush=True)
        save()
        return True

    def report(key: str, text: str, value: float) -> None:
        results["data"][key] = value
        print("  " + text, flush=True)
        save()

    # --- data stages (CPU) ---
    if "data" in args.parts and not skip("data"):
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
        train_tf = frame_transform(params.augment)
        sample = torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # single-threaded, as in a DataLoader worker
        value = rate(lambda: [train_tf(sample) for _ in range(100)], 100)
        report("augmentation samples/s", line("augmentation (1 thread)", "samples/s", value), value)
        torch.set_num_threads(threads)

    # --- RAFT flow: flow_images vs the raw forward, per flow batch size ---
    if "raft" in args.parts and args.raft != "none":
        for batch, end_to_end, raw, peak in bench_raft(args.raft, updates, clips, flow_size, flow_batches, device,
                                                       repeat, time_left):
            name = f"flow {args.raft} ({updates} updates, batch {batch})"
            if end_to_end is None:
                skip(name)
                continue
            results["flow"].append({"method": args.raft, "batch": batch, "pairs_per_s": end_to_end,
                                    "raw_pairs_per_s": raw, "ratio": end_to_end / raw, "peak_memory_bytes": peak})
            print("  " + line(name, "pairs/s", end_to_end, raw), flush=True)
            save()

    # --- training: DataLoader + train_epoch vs the bare step; the loader alone ---
    if "train" in args.parts:
        n = max(batches) * steps
        with tempfile.TemporaryDirectory() as tmp:
            datasets = training_sets(Path(tmp), n, size, params.augment)
            for name, dataset in datasets.items():
                for batch in batches:
                    if skip(f"train {name} batch {batch}"):
                        continue
                    bench_training(name, dataset, batch, n, precisions, runtime, device, repeat, results, save,
                                   time_left, skip)
    results["complete"] = not results["skipped"]
    save()


def bench_training(name: str, dataset, batch: int, n: int, precisions: list[str], runtime, device: torch.device,
                   repeat: int, results: dict, save, time_left, skip) -> None:
    """One model at one batch size: per precision, samples/s through the DataLoader and train_epoch
    and of the bare step on a device-resident batch; then the loader alone."""
    channels_last = runtime.channels_last

    def fresh():
        """The model and optimizer from the same initial state: the speed of a CPU step depends on
        the weights (denormal floats appear after some Adam steps), so each side starts alike."""
        torch.manual_seed(0)
        spatial, temporal = spatial_model(NUM_CLASSES, False), temporal_model(NUM_CLASSES, False)
        model = {"spatial": spatial, "temporal": temporal, "fusion": TwoStream(spatial, temporal, NUM_CLASSES)}[name]
        place_model(model, device, channels_last)
        model.train()
        return model, make_optimizer(model, 1e-4)

    loader = make_loader(dataset, batch, runtime, shuffle=True, seed=0, device=device)
    x, _ = next(iter(loader))
    inputs = tuple(t.to(device) for t in (x if isinstance(x, (tuple, list)) else (x,)))
    if channels_last:
        inputs = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
    y = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    steps = max(1, n // batch)
    raws = []
    for precision in precisions:
        label = f"train {name} batch {batch} {precision}"
        if precision != precisions[0] and skip(label):
            continue
        amp = precision == "bf16"
        reset_peak(device)
        model, optimizer = fresh()

        def epoch():
            train_epoch(model, loader, optimizer, device, amp, progress=False, channels_last=channels_last)

        end_to_end = rate(epoch, len(loader) * batch, repeat, device)
        model, optimizer = fresh()

        def step():
            for _ in range(steps):
                with _autocast(device, amp):
                    logits = model(*inputs)
                loss = torch.nn.functional.cross_entropy(logits.float(), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
        raw = rate(step, steps * batch, repeat, device)
        raws.append(raw)
        results["train"].append({"model": name, "batch": batch, "precision": precision,
                                 "channels_last": channels_last, "samples_per_s": end_to_end,
                                 "raw_samples_per_s": raw, "ratio": end_to_end / raw,
                                 "peak_memory_bytes": peak_memory(device)})
        print("  " + line(label, "samples/s", end_to_end, raw), flush=True)
        save()
        del model, optimizer
    if raws and not skip(f"loader {name} batch {batch}"):
        def load():
            for _ in loader:
                pass
        value = rate(load, len(loader) * batch, repeat)
        fastest = max(raws)
        results["loader"].append({"model": name, "batch": batch, "workers": runtime.loader_workers,
                                  "samples_per_s": value, "fastest_step_samples_per_s": fastest,
                                  "ratio": value / fastest})
        print("  " + line(f"loader {name} batch {batch} ({runtime.loader_workers} worker(s))", "samples/s", value,
                          fastest, "fastest model step", "the model step"), flush=True)
        save()
    del loader


if __name__ == "__main__":
    main()
