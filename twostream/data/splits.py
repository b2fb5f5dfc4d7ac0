"""Train/val/test manifests for Stanford40 and HMDB51.

Manifests are small CSVs with columns `path` (relative to the dataset's raw
root), `label` (0..11) and `class` (the dataset's own class name).

Stanford40: the official train and test lists are merged, restricted to the 12
classes, then split stratified: `test_fraction` of all images for test, then
`val_fraction` of the rest for val. Train and val are oversampled to balance the
classes *after* splitting (no image leaks between splits); test never is.

HMDB51: official split `hmdb51_split`; tag 1 is train, tag 2 test, tag 0
unused; `val_fraction` of train (stratified) becomes val.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES, label_of

COLUMNS = ("path", "label", "class")
SPLITS = ("train", "val", "test")


class SplitListError(ValueError):
    """A split list that is missing or malformed."""


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise SplitListError(f"{path}: split list not found; run the download stage first")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def stanford40_class_of(file_name: str) -> str:
    """`riding_a_bike_007.jpg` -> `riding_a_bike`."""
    stem, sep, number = Path(file_name).stem.rpartition("_")
    if not sep or not number.isdigit():
        raise SplitListError(f"not a Stanford40 image name (<class>_<NNN>.jpg): {file_name!r}")
    return stem


def stanford40_items(root: Path) -> pd.DataFrame:
    """All images of the 12 classes from the official train.txt + test.txt."""
    names: list[str] = []
    for list_name in ("train.txt", "test.txt"):
        names += _read_lines(root / "ImageSplits" / list_name)
    rows = [(f"JPEGImages/{n}", stanford40_class_of(n)) for n in names]
    frame = pd.DataFrame(rows, columns=["path", "class"])
    frame = frame[frame["class"].isin(STANFORD40_CLASSES)].drop_duplicates("path")
    missing = [c for c in STANFORD40_CLASSES if c not in set(frame["class"])]
    if missing:
        raise SplitListError(f"{root / 'ImageSplits'}: no images of class(es) {', '.join(missing)}")
    frame["label"] = frame["class"].map(label_of)
    return frame.sort_values(["label", "path"]).reset_index(drop=True)[list(COLUMNS)]


def oversample(frame: pd.DataFrame, random_state: int) -> pd.DataFrame:
    """Balance classes: each class keeps its rows in order, then random duplicates up to the largest class."""
    rng = np.random.default_rng(random_state)
    target = frame["label"].value_counts().max()
    parts = []
    for _, group in frame.groupby("label", sort=True):
        extra = rng.choice(len(group), size=target - len(group), replace=True)
        parts += [group, group.iloc[extra]]
    return pd.concat(parts, ignore_index=True)


def _stratified(frame: pd.DataFrame, fraction: float, random_state: int, key: str):
    """train_test_split, stratified by label, with an error naming the param when it cannot stratify."""
    classes = frame["label"].nunique()
    held_out = int(np.ceil(fraction * len(frame)))
    if held_out < classes or len(frame) - held_out < classes:
        raise SplitListError(f"{key}: {fraction} of {len(frame)} items gives {held_out} held out; a stratified "
                             f"split of {classes} classes needs at least {classes} on each side "
                             f"(use more data or another fraction)")
    return train_test_split(frame, test_size=fraction, stratify=frame["label"], random_state=random_state)


def split_stanford40(items: pd.DataFrame, test_fraction: float, val_fraction: float,
                     random_state: int, balance: bool) -> dict[str, pd.DataFrame]:
    rest, test = _stratified(items, test_fraction, random_state, "split.test_fraction")
    train, val = _stratified(rest, val_fraction, random_state, "split.val_fraction")
    splits = {"train": train, "val": val, "test": test}
    if balance:
        splits["train"] = oversample(train, random_state)
        splits["val"] = oversample(val, random_state + 1)
    return {k: v.reset_index(drop=True)[list(COLUMNS)] for k, v in splits.items()}


def parse_hmdb51_split_file(path: Path) -> list[tuple[str, int]]:
    """Lines `<video>.avi <tag>`, tag 0 (unused), 1 (train) or 2 (test)."""
    entries = []
    for number, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].endswith(".avi") or parts[1] not in ("0", "1", "2"):
            raise SplitListError(f"{path}:{number}: expected '<video>.avi <0|1|2>', got {line!r}")
        entries.append((parts[0], int(parts[1])))
    return entries


def hmdb51_items(root: Path, split: int) -> pd.DataFrame:
    """Videos of the 12 classes with their tag in official split `split`."""
    rows = []
    for cls in HMDB51_CLASSES:
        list_path = root / "testTrainMulti_7030_splits" / f"{cls}_test_split{split}.txt"
        rows += [(f"{cls}/{video}", label_of(cls), cls, tag)
                 for video, tag in parse_hmdb51_split_file(list_path)]
    return pd.DataFrame(rows, columns=[*COLUMNS, "tag"])


def split_hmdb51(items: pd.DataFrame, val_fraction: float, random_state: int) -> dict[str, pd.DataFrame]:
    train_all = items[items["tag"] == 1]
    test = items[items["tag"] == 2]
    for name, part in (("train (tag 1)", train_all), ("test (tag 2)", test)):
        if part.empty:
            raise SplitListError(f"HMDB51 split lists have no {name} videos")
    train, val = _stratified(train_all, val_fraction, random_state, "split.val_fraction")
    splits = {"train": train.sort_values(["label", "path"]), "val": val.sort_values(["label", "path"]),
              "test": test}
    return {k: v.reset_index(drop=True)[list(COLUMNS)] for k, v in splits.items()}


SEED_LISTS = Path(__file__).parent / "seed_splits"


def _label(name: str, source: Path) -> int:
    try:
        return label_of(name)
    except KeyError as exc:
        raise SplitListError(f"{source}: {exc.args[0]}") from None


def _seed_list(dataset: str, name: str) -> list[str]:
    return _read_lines(SEED_LISTS / dataset / name)


def _check_present(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    missing = [p for p in frame["path"].unique() if not (root / p).is_file()]
    if missing:
        raise SplitListError(
            f"split.lists: seed names {len(missing)} file(s) missing from {root}, e.g. {missing[0]}: the "
            f"authors' lists need the real datasets (data.source: real); use split.lists: generated otherwise")
    return frame


def seed_stanford40(root: Path, balance: bool) -> dict[str, pd.DataFrame]:
    """The authors' exact Stanford40 lists (train/val oversampled by them when `balance`)."""
    names = {"train": "train_files_osamp.txt" if balance else "train_files.txt",
             "val": "val_files_osamp.txt" if balance else "val_files.txt", "test": "test_files.txt"}
    out = {}
    for split, list_name in names.items():
        files = _seed_list("Stanford40", list_name)
        classes = [stanford40_class_of(f) for f in files]
        frame = pd.DataFrame({"path": [f"JPEGImages/{f}" for f in files],
                              "label": [label_of(c) for c in classes], "class": classes})
        out[split] = _check_present(frame, root)
    return out


def seed_hmdb51(root: Path) -> dict[str, pd.DataFrame]:
    """The authors' exact HMDB51 split-1 lists (756 / 84 / 360 clips)."""
    out = {}
    for split in SPLITS:
        files, classes = _seed_list("HMDB51", f"{split}_files.txt"), _seed_list("HMDB51", f"{split}_labels.txt")
        if len(files) != len(classes):
            raise SplitListError(f"{SEED_LISTS / 'HMDB51'}: {split}_files.txt and {split}_labels.txt differ in length")
        frame = pd.DataFrame({"path": [f"{c}/{f}" for f, c in zip(files, classes)],
                              "label": [_label(c, SEED_LISTS / "HMDB51" / f"{split}_labels.txt") for c in classes],
                              "class": classes})
        out[split] = _check_present(frame, root)
    return out
