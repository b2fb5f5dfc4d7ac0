"""Write README.md's headline results from the committed results (metrics/*.json), between two markers:
the first sections of the text evaluate writes to metrics/results.md (`twostream.report.headline_markdown`:
the result table with the test intervals, one clip vs the whole video; the rest stays in metrics/results.md).

    python scripts/readme_results.py           # rewrite the block between the markers in README.md
    python scripts/readme_results.py --check   # exit 1 when README.md's block is not what the files give

`make repro` runs it after `dvc repro`; tests/test_readme_results.py checks the committed README.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twostream.errors import InputError, TwostreamError
from twostream.io import write_text
from twostream.report import headline_markdown, read_metrics

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- results: written by scripts/readme_results.py from metrics/*.json (make repro); do not edit -->"
END = "<!-- end of results -->"
LEVEL = 3  # the sections sit under README's "## Results" heading


def results_block(root: Path) -> str:
    """The README's results sections, from the results committed under `root`."""
    return headline_markdown(read_metrics(root / "metrics"), LEVEL)


def current_block(readme: str, source: Path | str = "README.md") -> str:
    """The text between the markers (one of each, BEGIN first), else an InputError naming `source`."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise InputError(f"{source}: needs one line {BEGIN!r} and, after it, one line {END!r} around the results")
    return readme[readme.index(BEGIN) + len(BEGIN):readme.index(END)].strip("\n") + "\n"


def with_block(readme: str, block: str, source: Path | str = "README.md") -> str:
    """`readme` with the text between the markers replaced by `block`."""
    current_block(readme, source)
    before, rest = readme.split(BEGIN)
    _, after = rest.split(END)
    return f"{before}{BEGIN}\n{block.strip(chr(10))}\n{END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    parser.add_argument("--root", default=str(ROOT), help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    readme_path = root / "README.md"
    try:
        readme = readme_path.read_text()
        updated = with_block(readme, results_block(root), readme_path)
    except TwostreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.check:
        if updated != readme:
            print(f"error: {readme_path}: the results block is not what metrics/ gives; "
                  f"run python scripts/readme_results.py", file=sys.stderr)
            return 1
        return 0
    if updated != readme:
        write_text(readme_path, updated)
        print(f"{readme_path}: results updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
