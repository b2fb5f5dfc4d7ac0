"""The README and docs/ keep the project's rules for docs: a short README, no commit hashes, no timings
in the comments of runtime.yaml."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a word of 7-40 hex digits with a letter and a digit in it, not part of a file name (resnet18-f37072fd.pth)
COMMIT = re.compile(r"(?<![\w./-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![\w./-])")


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move the details to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_commit_hashes(page):
    found = [(n, m.group()) for n, line in enumerate(page.read_text().splitlines(), 1) for m in COMMIT.finditer(line)]
    assert not found, f"{page.name}: commit hashes (docs state facts, not history): {found}"


def test_the_commit_pattern():
    assert COMMIT.search("at commit f65abd6, on") and COMMIT.search("(62e08b9)")
    assert not COMMIT.search("resnet18-f37072fd.pth") and not COMMIT.search("4294967295 and deadbeef")


def test_runtime_yaml_comments_hold_no_timings():
    timing = re.compile(r"\d\s*(%|s\b|ms\b|min\b|samples/s|x faster|x slower)")
    comments = [line.split("#", 1)[1] for line in (ROOT / "runtime.yaml").read_text().splitlines() if "#" in line]
    assert not [c for c in comments if timing.search(c)]
