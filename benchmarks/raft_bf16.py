"""How much bf16 autocast changes RAFT's flow images (the question before making it a param).

    python benchmarks/raft_bf16.py [--clips 4] [--size 224] [--updates 12]

Renders synthetic clips (the demo's renderer, every class in turn), takes their 9 flow frames
padded and resized as sample_frames does, and computes the 8 flow images per clip with RAFT-large
in float32 and under bf16 autocast (CUDA when available, else the CPU's bf16). Prints the max and
mean absolute difference of the uint8 flow images, the share of pixels that differ by more than 8
levels, the end-point error between the two flows, and the time of each. Uses the real weights
when they are in TORCH_HOME, else a random stand-in (then the figures say little about the
trained network: say so when quoting them).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch
from torchvision.utils import flow_to_image

from twostream.classes import HMDB51_CLASSES
from twostream.data.images import pad_resize
from twostream.data.render import render_clip
from twostream.data.video import flow_frame_indices
from twostream.flow import _raft_model
from twostream.params import load_params
from twostream.weights import is_standin, weights_path, write_standins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--updates", type=int, default=12)
    args = parser.parse_args()
    from torchvision.models.optical_flow import Raft_Large_Weights

    if not weights_path(Raft_Large_Weights.DEFAULT).is_file():
        os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="twostream-bf16-")
        write_standins(os.environ["TORCH_HOME"], only=[Raft_Large_Weights.DEFAULT])
    standin = is_standin(weights_path(Raft_Large_Weights.DEFAULT))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = _raft_model("raft_large", True, device)
    synthetic = load_params().data.synthetic
    diffs, epes, times = [], [], {False: 0.0, True: 0.0}
    for k in range(args.clips):
        name = HMDB51_CLASSES[k % len(HMDB51_CLASSES)]
        clip = render_clip(name, np.random.SeedSequence(0, spawn_key=(k,)), synthetic).frames[..., ::-1]  # BGR->RGB
        frames = np.stack([pad_resize(np.ascontiguousarray(clip[i]), args.size)
                           for i in flow_frame_indices(len(clip))])
        x = torch.from_numpy(frames).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        flows = {}
        for amp in (False, True):
            start = time.perf_counter()
            with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=amp):
                flows[amp] = model(x[:-1], x[1:], num_flow_updates=args.updates)[-1].float().cpu()
            times[amp] += time.perf_counter() - start
        images = {amp: flow_to_image(f).numpy().astype(int) for amp, f in flows.items()}
        diffs.append(np.abs(images[True] - images[False]))
        epes.append(torch.linalg.vector_norm(flows[True] - flows[False], dim=1).mean().item())
        print(f"clip {k} ({name}): max {diffs[-1].max()}, mean {diffs[-1].mean():.3f} levels; "
              f"EPE {epes[-1]:.4f} px (flow magnitude {torch.linalg.vector_norm(flows[False], dim=1).mean():.3f} px)")
    diff = np.concatenate([d.ravel() for d in diffs])
    print(f"RAFT-large {args.size} px, {args.updates} updates, {args.clips} clips on {device}"
          f"{' (RANDOM STAND-IN WEIGHTS)' if standin else ''}: bf16 vs float32 flow images differ by max {diff.max()}, "
          f"mean {diff.mean():.3f} uint8 levels; {100 * (diff > 8).mean():.2f}% of values by > 8; mean EPE "
          f"{np.mean(epes):.4f} px; time float32 {times[False]:.1f} s, bf16 {times[True]:.1f} s")


if __name__ == "__main__":
    main()
