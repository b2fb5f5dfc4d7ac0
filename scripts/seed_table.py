"""The demo's seed table: one-clip test accuracy of the HMDB51 models and of each stream on the designed
class pairs, per experiment and as mean ± std, read from the experiments' committed results through git.

    for n in 0 1 2 3 4; do dvc exp run -S seed=$n; done
    python scripts/seed_table.py            # the experiments of HEAD (dvc exp show's), by seed
    python scripts/seed_table.py REV ...    # or any revisions: branches, tags, experiment refs

Each revision's accuracy is computed from its confusion rows (plots/confusion/<model>.csv, one row per
test video, `cache: false`, so they are in git), and its `seed` read from its params.yaml. The pair
columns give the share of a designed pair's test videos (`classes.DESIGNED_PAIRS`) that the frame model
and the flow model get exactly right. Nothing is run again. The table is markdown; docs/demo.md holds it.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twostream.classes import DESIGNED_PAIRS  # noqa: E402
from twostream.report import CONFUSION_COLUMNS, pair_counts  # noqa: E402

MODELS = (("hmdb51_frames", "frames"), ("hmdb51_flow", "flow"), ("hmdb51_twostream", "two-stream"),
          ("hmdb51_late_fusion", "late fusion"))
PAIR_STREAMS = (("hmdb51_frames", "frames"), ("hmdb51_flow", "flow"))


class TableError(Exception):
    pass


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise TableError(f"git {' '.join(args)}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return done.stdout


def experiments(repo: Path, baseline: str = "HEAD") -> list[str]:
    """The experiment refs whose baseline is `baseline` (DVC keeps them as refs/exps/<sha[:2]>/<sha[2:]>/<name>)."""
    sha = _git(repo, "rev-parse", baseline).strip()
    prefix = f"refs/exps/{sha[:2]}/{sha[2:]}/"
    return [ref for ref in _git(repo, "for-each-ref", "--format=%(refname)", prefix).split() if ref.startswith(prefix)]


def read_revision(repo: Path, rev: str) -> dict[str, float]:
    """seed, one-clip accuracy per model, and per designed pair the share each stream gets right."""
    try:
        params = yaml.safe_load(_git(repo, "show", f"{rev}:params.yaml"))
        rows = {name: pd.read_csv(io.StringIO(_git(repo, "show", f"{rev}:plots/confusion/{name}.csv")))
                for name, _ in MODELS}
    except TableError as exc:
        raise TableError(f"{rev}: no committed results ({exc}); run `dvc exp run` or pass another revision") from None
    out: dict[str, float] = {"seed": float(params["seed"])}
    for name, title in MODELS:
        r = rows[name][list(CONFUSION_COLUMNS)]
        out[title] = float((r["actual"] == r["predicted"]).mean())
    for first, second, _ in DESIGNED_PAIRS:
        for name, title in PAIR_STREAMS:
            n, right, _ = pair_counts(rows[name], first, second)
            out[f"{first}/{second} {title}"] = right / n if n else float("nan")
    out["test videos"] = float(len(rows[MODELS[0][0]]))
    return out


def table(results: pd.DataFrame) -> str:
    """Markdown: one row per revision (by seed), then mean ± std (std with ddof=1)."""
    models = [title for _, title in MODELS]
    pairs = [f"{a}/{b}" for a, b, _ in DESIGNED_PAIRS]
    head = ["seed", "test videos", *models, *(f"{p} (frames / flow)" for p in pairs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, row in results.sort_values("seed").iterrows():
        cells = [f"{int(row['seed'])}", f"{int(row['test videos'])}", *(f"{row[m]:.3f}" for m in models),
                 *(f"{row[f'{p} frames']:.2f} / {row[f'{p} flow']:.2f}" for p in pairs)]
        lines.append("| " + " | ".join(cells) + " |")
    mean, std = results.mean(), results.std(ddof=1) if len(results) > 1 else results.mean() * np.nan
    cells = ["mean ± std", "", *(f"{mean[m]:.3f} ± {std[m]:.3f}" for m in models),
             *(f"{mean[f'{p} frames']:.2f} ± {std[f'{p} frames']:.2f} / {mean[f'{p} flow']:.2f} ± {std[f'{p} flow']:.2f}"
               for p in pairs)]
    lines.append("| " + " | ".join(cells) + " |")
    two = results["two-stream"]
    margins = ", ".join(f"{m} {(two - results[m]).mean():+.3f} (smallest {(two - results[m]).min():+.3f})"
                        for m in models if m != "two-stream")
    lines += ["", f"Two-stream minus, mean over the {len(results)} runs: {margins}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revs", nargs="*", help="revisions (default: the experiments of HEAD)")
    parser.add_argument("--repo", default=".", help="the repository (default: the current directory)")
    args = parser.parse_args(argv)
    repo = Path(args.repo)
    try:
        revs = args.revs or experiments(repo)
        if not revs:
            raise TableError("no experiments of HEAD; run `dvc exp run -S seed=N` first, or pass revisions")
        results = pd.DataFrame([read_revision(repo, rev) for rev in revs])
    except TableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
