"""Aggregate finished DVC experiments: per model and protocol, the test accuracy's mean ± std over
seeds in each HMDB51 fold, and the HMDB51 protocol (the mean over folds 1-3) when all three are there.

Experiments with the same params apart from `seed` and `split.hmdb51_fold` are one configuration;
each configuration gets its own table. Queue them with `dvc exp run --queue -S seed=0,1,2,3,4
-S split.hmdb51_fold=1,2,3` and `dvc queue start -j N` (docs/comparing.md).
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rev", action="append", default=None, metavar="REV",
                        help="the experiments of this baseline commit, branch or tag (repeatable; default: HEAD)")
    parser.add_argument("--all-commits", "-A", action="store_true",
                        help="the experiments of every commit (as `dvc exp show -A`)")
    parser.add_argument("--repo", default=".", help="a path inside the DVC repository (default: the current directory)")


def experiments_shown(root, revs, all_commits: bool) -> list[dict]:
    """What `dvc exp show --json` prints, through DVC's Python API."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        shown = repo.experiments.show(revs=revs, all_commits=all_commits, hide_queued=False, hide_failed=False)
        return json.loads(json.dumps([e.dumpd() for e in shown], default=str))


def run(args: argparse.Namespace) -> int:
    from twostream.aggregate import aggregate
    from twostream.compare import repository_root

    root = repository_root(args.repo)
    where = "every commit" if args.all_commits else ", ".join(args.rev or ["HEAD"])
    text, notes = aggregate(experiments_shown(root, args.rev, args.all_commits), where)
    sys.stdout.write(text)
    for note in notes:
        print(note, file=sys.stderr)
    return 0
