"""Compare the workspace's metrics with a commit's (default HEAD): after `make repro` in a fresh
clone, every test accuracy in metrics/accuracy.json (each model's, one clip and video level) must
match the committed one within --tolerance.

The tolerance holds on the kind of machine that produced the commit. Another CPU instruction set
(AVX2 vs AVX-512), another device or another library build rounds the training arithmetic
differently, and training turns that into a different, equally valid run (docs/reproducibility.md,
"The same bytes on the same kind of machine"): there, expect FAIL lines, while `git diff dvc.lock` still shows the data stages'
outputs unchanged.

    python scripts/check_reproduction.py [--rev HEAD] [--tolerance 0.01]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ACCURACY = "metrics/accuracy.json"  # the headline test accuracies (twostream.evaluate.metrics_files)


def committed(rev: str, path: str) -> dict:
    text = subprocess.run(["git", "show", f"{rev}:{path}"], capture_output=True, text=True, check=True).stdout
    return json.loads(text)


def flatten(node: dict, prefix: str = "") -> dict[str, float]:
    """{"a": 1, "video_accuracy": {"a": 2}} -> {"a": 1, "video_accuracy.a": 2}"""
    out = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        out.update(flatten(value, f"{name}.") if isinstance(value, dict) else {name: value})
    return out


def compare(workspace: dict, reference: dict, tolerance: float) -> list[str]:
    """Lines describing each accuracy; those starting with 'FAIL' are out of tolerance or missing."""
    got_all, want_all = flatten(workspace), flatten(reference)
    lines = []
    for name, want in want_all.items():
        got = got_all.get(name)
        if got is None:
            lines.append(f"FAIL {name}: missing from the workspace (committed {want:.4f})")
            continue
        status = "ok  " if abs(got - want) <= tolerance else "FAIL"
        lines.append(f"{status} {name}: test accuracy {got:.4f} (committed {want:.4f}, diff {got - want:+.4f})")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--tolerance", type=float, default=0.01)
    args = parser.parse_args()
    lines = compare(json.loads(Path(ACCURACY).read_text()), committed(args.rev, ACCURACY), args.tolerance)
    print("\n".join(lines))
    if any(line.startswith("FAIL") for line in lines):
        print("note: the committed run came from one kind of machine; another CPU instruction set or device "
              "rounds differently and trains a different run. Compare on the same kind of machine, and check "
              "with `git diff dvc.lock` that only training stages changed.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
