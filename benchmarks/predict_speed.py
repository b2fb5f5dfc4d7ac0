"""Speed of `twostream predict` (videos/s): decode, frame choice, flow, both protocols (one clip and K clips).

    python benchmarks/predict_speed.py                      # the demo model (models/hmdb51_twostream.pt)
    python benchmarks/predict_speed.py --raft-224           # a two-stream at 224 px with RAFT-large flow

Times `twostream.predict.Predictor.predict` (what the command runs per file) on the demo's HMDB51 test
videos (data/raw/hmdb51, listed in data/manifests/hmdb51_test.csv; run `dvc repro` first), after one
warm-up video, and prints wall-clock videos/s and the process's CPU seconds per video. --raft-224 builds
an untrained two-stream network at 224 px recording RAFT-large flow (12 updates) and loads RAFT's random
stand-in weights from a temporary TORCH_HOME (twostream.weights.write_standins): the timing is real, the
predictions are meaningless. Threads: torch's default (one per core).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def raft_model(directory: Path) -> Path:
    """An untrained two-stream model file at 224 px whose flow is RAFT-large with stand-in weights."""
    import torch
    from torchvision.models.optical_flow import Raft_Large_Weights

    from twostream.checkpoint import checkpoint_meta, preprocess_meta, save_checkpoint
    from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
    from twostream.flow import flow_settings
    from twostream.models import ModelSpec, build_model
    from twostream.params import FlowParams
    from twostream.weights import write_standins

    os.environ["TORCH_HOME"] = str(directory / "torch")
    write_standins(directory / "torch", only=[Raft_Large_Weights.DEFAULT])
    torch.manual_seed(0)
    spec = ModelSpec("twostream", NUM_CLASSES, False, False)
    model = build_model(spec)
    record = preprocess_meta("video", 224, "middle", flow_settings(FlowParams("raft_large", 12, True)))
    path = directory / "twostream_raft224.pt"
    save_checkpoint(path, model, checkpoint_meta(spec, model, "hmdb51", HMDB51_CLASSES, 224, {}, preprocess=record),
                    1, [{"train_accuracy": 0.0, "train_loss": 0.0, "val_accuracy": 0.0, "val_loss": 0.0}])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "hmdb51_twostream.pt"))
    parser.add_argument("--raft-224", action="store_true", help="time a 224 px two-stream with RAFT-large flow")
    parser.add_argument("--videos", type=int, default=None, help="videos to time (default: 24; 3 with --raft-224)")
    parser.add_argument("--clips", type=int, default=None,
                        help="clips per video (default: params.yaml's video_test.clips, as `twostream predict`)")
    args = parser.parse_args()

    import pandas as pd

    from twostream.params import load_params
    from twostream.predict import Predictor, load_member

    if args.clips is None:
        args.clips = load_params(ROOT / "params.yaml").video_test.clips
    count = args.videos or (3 if args.raft_224 else 24)
    manifest = pd.read_csv(ROOT / "data" / "manifests" / "hmdb51_test.csv")
    videos = [ROOT / "data" / "raw" / "hmdb51" / p for p in manifest["path"][:count + 1]]
    with tempfile.TemporaryDirectory() as tmp:
        model = raft_model(Path(tmp)) if args.raft_224 else Path(args.model)
        predictor = Predictor([load_member(model)], clips=args.clips)
        predictor.predict(videos[0])  # warm-up: first convolutions, RAFT's load
        wall, cpu = time.perf_counter(), time.process_time()
        for video in videos[1:]:
            predictor.predict(video)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    import torch

    print(f"{model.name}: {len(videos) - 1} videos, {args.clips} clips each (+ the one-clip protocol), "
          f"{torch.get_num_threads()} torch threads: {(len(videos) - 1) / wall:.2f} videos/s "
          f"({wall / (len(videos) - 1):.2f} s per video wall-clock, {cpu / (len(videos) - 1):.2f} CPU s per video)")


if __name__ == "__main__":
    main()
