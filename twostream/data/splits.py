"""The split stage's logic: train/val/test manifests for Stanford40 and HMDB51.

Stanford40: the official train and test lists are merged, restricted to the 12 classes, then
split stratified: `test_fraction` of all images for test, then `val_fraction` of the rest for
val. Train and val are oversampled to balance the classes *after* splitting (no image leaks
between subsets); test never is.

HMDB51: one of the three official folds (`split.hmdb51_fold`); tag 1 is train, tag 2 test,
tag 0 unused; `val_fraction` of train (stratified) becomes val.

Every list entry must name a file that exists under the raw root, and every class a class of
the table: a problem stops here, naming the list and the line, not stages later.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES, label_of
from twostream.data import layout
from twostream.data.manifests import COLUMNS, check_manifest
from twostream.data.sizes import held_out
from twostream.errors import ListError
from twostream.params import SUBSETS


def read_list(path: Path) -> list[str]:
    """The lines of a list file, stripped; a missing file names the stage to run."""
    if not path.is_file():
        raise ListError(f"{path}: split list not found; run the download stage first")
    return [line.strip() for line in path.read_text(errors="replace").splitlines()]


def stratified(frame: pd.DataFrame, fraction: float, random_state: int, key: str):
    """train_test_split stratified by label; an error naming the param when it cannot stratify."""
    classes = frame["label"].nunique()
    out = held_out(len(frame), fraction)
    if out < classes or len(frame) - out < classes:
        raise ListError(f"{key}: {fraction} of {len(frame)} items gives {out} held out; a stratified "
                        f"split of {classes} classes needs at least {classes} on each side "
                        f"(use more data or another fraction)")
    per_label = frame["label"].value_counts()
    if per_label.min() < 2:  # scikit-learn's own requirement, else its ValueError ends the stage
        name = frame["class"][frame["label"] == per_label.idxmin()].iloc[0]
        raise ListError(f"{key}: a stratified split needs >= 2 items of every class; {name} has "
                        f"{per_label.min()} here (use more data or another fraction)")
    return train_test_split(frame, test_size=fraction, stratify=frame["label"], random_state=random_state)


def stanford40_items(root: Path) -> pd.DataFrame:
    """All images of the 12 classes from the official train.txt + test.txt."""
    rows = []
    for list_name in layout.STANFORD40_LIST_FILES:
        path = layout.stanford40_list(root, list_name)
        for number, name in enumerate(read_list(path), start=1):
            if not name:
                continue
            try:
                cls = layout.stanford40_class_of(name)
            except ListError as exc:
                raise ListError(f"{path}:{number}: {exc}") from None
            if cls in STANFORD40_CLASSES:
                rows.append((layout.stanford40_image(name), cls, f"{path}:{number}"))
    frame = pd.DataFrame(rows, columns=["path", "class", "where"]).drop_duplicates("path")
    missing = [c for c in STANFORD40_CLASSES if c not in set(frame["class"])]
    if missing:
        raise ListError(f"{root / layout.STANFORD40_LISTS}: no images of class(es) {', '.join(missing)}")
    absent = [(w, p) for p, w in zip(frame["path"], frame["where"]) if not (root / p).is_file()]
    if absent:
        raise ListError(f"{absent[0][0]}: {absent[0][1]} does not exist under {root} "
                        f"({len(absent)} listed image(s) missing); re-run the download stage")
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


def split_stanford40(items: pd.DataFrame, test_fraction: float, val_fraction: float,
                     random_state: int, balance: bool) -> dict[str, pd.DataFrame]:
    rest, test = stratified(items, test_fraction, random_state, "split.test_fraction")
    train, val = stratified(rest, val_fraction, random_state, "split.val_fraction")
    subsets = {"train": train, "val": val, "test": test}
    if balance:
        subsets["train"] = oversample(train, random_state)
        subsets["val"] = oversample(val, random_state + 1)
    return {k: v.reset_index(drop=True)[list(COLUMNS)] for k, v in subsets.items()}


def hmdb51_items(root: Path, fold: int) -> pd.DataFrame:
    """Videos of the 12 classes with their tag in official fold `fold`; listed videos must exist."""
    rows = []
    for cls in HMDB51_CLASSES:
        path = layout.hmdb51_list(root, cls, fold)
        entries = layout.parse_hmdb51_list(path, read_list(path))
        for number, video, tag in entries:
            relative = layout.hmdb51_video(cls, video)
            if tag != 0 and not (root / relative).is_file():
                raise ListError(f"{path}:{number}: {video} (tagged {layout.HMDB51_TAGS[tag]}) does not exist in "
                                f"{root / cls}; re-run the download stage, or tag it 0 (unused)")
            rows.append((relative, label_of(cls), cls, tag))
    return pd.DataFrame(rows, columns=[*COLUMNS, "tag"])


def split_hmdb51(items: pd.DataFrame, val_fraction: float, random_state: int) -> dict[str, pd.DataFrame]:
    train_all = items[items["tag"] == 1]
    test = items[items["tag"] == 2]
    for name, part in (("train (tag 1)", train_all), ("test (tag 2)", test)):
        if part.empty:
            raise ListError(f"HMDB51 split lists have no {name} videos")
    train, val = stratified(train_all, val_fraction, random_state, "split.val_fraction")
    subsets = {"train": train.sort_values(["label", "path"]), "val": val.sort_values(["label", "path"]),
               "test": test}
    return {k: v.reset_index(drop=True)[list(COLUMNS)] for k, v in subsets.items()}


SEED_LISTS = Path(__file__).parent / "seed_splits"


def _seed_list(dataset: str, name: str) -> tuple[Path, list[str]]:
    path = SEED_LISTS / dataset / name
    return path, [line for line in read_list(path) if line]


def _require_seed_files(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    missing = [p for p in frame["path"].unique() if not (root / p).is_file()]
    if missing:
        raise ListError(
            f"split.lists: seed names {len(missing)} file(s) missing from {root}, e.g. {missing[0]}: the "
            f"authors' lists need the real datasets (data.source: real); use split.lists: generated otherwise")
    return frame


def seed_stanford40(root: Path, balance: bool) -> dict[str, pd.DataFrame]:
    """The authors' exact Stanford40 lists (train/val oversampled by them when `balance`)."""
    names = {"train": "train_files_osamp.txt" if balance else "train_files.txt",
             "val": "val_files_osamp.txt" if balance else "val_files.txt", "test": "test_files.txt"}
    out = {}
    for subset, list_name in names.items():
        path, files = _seed_list("Stanford40", list_name)
        classes = [layout.stanford40_class_of(f) for f in files]
        frame = pd.DataFrame({"path": [layout.stanford40_image(f) for f in files],
                              "label": [label_of(c) for c in classes], "class": classes})
        out[subset] = _require_seed_files(check_manifest(frame, "stanford40", path), root)
    return out


def seed_hmdb51(root: Path) -> dict[str, pd.DataFrame]:
    """The authors' exact HMDB51 fold-1 lists (756 / 84 / 360 clips)."""
    out = {}
    for subset in SUBSETS:
        files_path, files = _seed_list("HMDB51", f"{subset}_files.txt")
        labels_path, classes = _seed_list("HMDB51", f"{subset}_labels.txt")
        if len(files) != len(classes):
            raise ListError(f"{files_path} and {labels_path} differ in length ({len(files)} vs {len(classes)})")
        unknown = next((i for i, c in enumerate(classes) if c not in HMDB51_CLASSES), None)
        if unknown is not None:
            raise ListError(f"{labels_path}:{unknown + 1}: class {classes[unknown]!r} is not one of the 12 "
                            f"hmdb51 classes")
        frame = pd.DataFrame({"path": [layout.hmdb51_video(c, f) for f, c in zip(files, classes)],
                              "label": [label_of(c) for c in classes], "class": classes})
        out[subset] = _require_seed_files(check_manifest(frame, "hmdb51", labels_path), root)
    return out
