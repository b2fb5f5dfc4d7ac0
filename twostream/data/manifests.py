"""Manifests: the small CSVs that say which items a subset holds and their labels.

Columns `path` (relative to the dataset's raw root), `label` (0..11) and `class` (the
dataset's own class name); data stages may add columns (e.g. `n_frames`). Every reader goes
through `read_manifest`, which checks each row against the class table: an unknown class, a
label out of range or a label that contradicts its class stops with the file and line. A path
that would leave the raw root (absolute, `..`, a backslash) is refused the same way: a manifest
or list may come from a stranger, and a stage opens what it names.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import pandas as pd

from twostream.classes import class_problem
from twostream.errors import ListError
from twostream.io import read_csv

COLUMNS = ("path", "label", "class")


def outside_root(path: str) -> str | None:
    """Why `path` (relative, `/`-separated) could name a file outside its root; None when it cannot."""
    if not path or path != path.strip():
        return "an empty path or one with surrounding spaces"
    if "\\" in path or "\0" in path:
        return "a backslash or NUL in the path"
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~") or (len(path) > 1 and path[1] == ":"):
        return "an absolute path"
    if any(part in ("..", ".") for part in path.split("/")) or "" in path.split("/"):
        return "a '..', '.' or empty path component"
    return None


def manifest_name(dataset: str, subset: str) -> str:
    """`stanford40_train.csv`, `hmdb51_test.csv`, ..."""
    return f"{dataset}_{subset}.csv"


def check_manifest(frame: pd.DataFrame, dataset: str, source: Path | str) -> pd.DataFrame:
    """`frame` if every row's class and label agree with the class table; else a ListError
    naming `source` and the line (the header is line 1)."""
    for line, (path, label, name) in enumerate(zip(frame["path"], frame["label"], frame["class"]), start=2):
        if not isinstance(path, str) or not path.strip():
            raise ListError(f"{source}:{line}: empty path; re-run the split stage")
        problem = outside_root(path)
        if problem:
            raise ListError(f"{source}:{line}: {path!r} leaves the dataset's root ({problem}): paths must be "
                            f"relative and stay inside it; re-run the split stage")
        problem = class_problem(dataset, name, label.item() if hasattr(label, "item") else label)
        if problem:
            raise ListError(f"{source}:{line}: {path}: {problem}")
    return frame


def read_manifest(path: Path | str, dataset: str, columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """A manifest CSV, checked (columns, classes, labels)."""
    frame = read_csv(path, columns)
    if not pd.api.types.is_integer_dtype(frame["label"]):
        for line, value in enumerate(frame["label"], start=2):
            try:
                whole = float(value).is_integer()
            except (TypeError, ValueError):
                whole = False
            if not whole:
                raise ListError(f"{path}:{line}: label {value!r} is not an integer; re-run the split stage")
        frame["label"] = frame["label"].astype(int)
    return check_manifest(frame, dataset, path)


def write_manifest(frame: pd.DataFrame, path: Path | str) -> None:
    """Write a manifest (inside a stage's temporary output directory: not atomic by itself)."""
    frame.to_csv(path, index=False)
