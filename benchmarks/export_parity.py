"""Export parity on the demo: the TorchScript and ONNX (onnxruntime) exports of a trained model against the
eager model, on real inputs (the frame and the flow stack of every 6th HMDB51 test video, prepared as predict
prepares them). Prints the largest absolute difference of the logits per format.

    python benchmarks/export_parity.py [--model models/hmdb51_twostream.pt]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "models" / "hmdb51_twostream.pt"))
    parser.add_argument("--every", type=int, default=6, help="every n-th test video (default: 6)")
    args = parser.parse_args()

    import numpy as np
    import pandas as pd
    import torch

    from twostream.export import INPUTS, export_model, load_exported
    from twostream.predict import Predictor, load_member

    member = load_member(Path(args.model))
    predictor = Predictor([member], clips=1)
    manifest = pd.read_csv(ROOT / "data" / "manifests" / "hmdb51_test.csv")
    videos = [ROOT / "data" / "raw" / "hmdb51" / p for p in manifest["path"][::args.every]]
    inputs = {name: [] for name in member.inputs}
    for video in videos:  # the one-clip inputs predict builds (first row of each)
        for name, tensor in predictor.video_inputs(video)[0].items():
            inputs[name].append(tensor[:1])
    arrays = [torch.cat(inputs[name]) for name in INPUTS[member.kind]]
    with torch.no_grad():
        eager = member.model(*arrays).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("torchscript", "onnx"):
            out = Path(tmp) / f"model.{fmt}"
            export_model(args.model, fmt, out)
            exported = load_exported(out, fmt)(*(a.numpy() for a in arrays))
            print(f"{Path(args.model).name} {fmt}: {len(videos)} videos, max abs difference of the logits "
                  f"{np.abs(exported - eager).max():.2e} (largest |logit| {np.abs(eager).max():.1f})")


if __name__ == "__main__":
    main()
