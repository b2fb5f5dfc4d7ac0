"""Compare two revisions' test predictions video by video: accuracy of A and B, B - A with a 95%
paired bootstrap interval, an exact McNemar p-value, `differs` or `within noise` at 0.05.

A and B are git revisions, branches, tags or `dvc exp` names; B defaults to the workspace and A to
HEAD (as `dvc metrics diff`). The per-video predictions are read from each revision's
plots/predictions/ through DVC; nothing is run again. See docs/comparing.md.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", nargs="?", default="HEAD", metavar="A",
                        help="revision, branch, tag or experiment name (default: HEAD)")
    parser.add_argument("b", nargs="?", default=None, metavar="B",
                        help="revision, branch, tag or experiment name (default: the workspace)")
    parser.add_argument("--repo", default=".", help="a path inside the DVC repository (default: the current directory)")


def run(args: argparse.Namespace) -> int:
    from twostream.compare import compare_runs, format_table, read_run, repository_root

    root = repository_root(args.repo)
    a, b = read_run(root, args.a), read_run(root, args.b)
    rows, unpaired = compare_runs(a, b)
    sys.stdout.write(format_table(rows, a.name, b.name))
    for line in unpaired:
        print(line)
    return 0
