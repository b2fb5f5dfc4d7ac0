"""Compare the workspace's metrics with a commit's (default HEAD): after `make repro` in a fresh
clone, every model's test accuracy must match the committed one within --tolerance.

    python scripts/check_reproduction.py [--rev HEAD] [--tolerance 0.01]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODELS = ("stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream")


def committed(rev: str, path: str) -> dict:
    text = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
    return json.loads(text)


def compare(workspace: dict[str, dict], reference: dict[str, dict], tolerance: float) -> list[str]:
    """Lines describing each model; those starting with 'FAIL' are out of tolerance."""
    lines = []
    for name in MODELS:
        got, want = workspace[name]["test"]["accuracy"], reference[name]["test"]["accuracy"]
        status = "ok  " if abs(got - want) <= tolerance else "FAIL"
        lines.append(f"{status} {name}: test accuracy {got:.4f} (committed {want:.4f}, diff {got - want:+.4f})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--tolerance", type=float, default=0.01)
    args = parser.parse_args()
    workspace = {m: json.loads(Path(f"metrics/{m}.json").read_text()) for m in MODELS}
    reference = {m: committed(args.rev, f"metrics/{m}.json") for m in MODELS}
    lines = compare(workspace, reference, args.tolerance)
    print("\n".join(lines))
    return 1 if any(line.startswith("FAIL") for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
