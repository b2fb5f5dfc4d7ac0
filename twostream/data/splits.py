"""The split stage's logic: train/val/test manifests for Stanford40 and HMDB51.

Stanford40: the official train and test lists are merged, restricted to the 12 classes, then
split stratified: `test_fraction` of all images for test, then `val_fraction` of the rest for
val. Train and val are oversampled to balance the classes *after* splitting (no image leaks
between subsets); test never is.

HMDB51: one of the three official folds (`split.hmdb51_fold`); tag 1 is train, tag 2 test,
tag 0 unused; about `val_fraction` of train becomes val. HMDB51 cuts up to three clips from one
source video (`layout.hmdb51_source_of`), so a random clip split puts clips of one video on both
sides and val accuracy measures partly recall of that video. `split.val_groups`:

- `source`: whole source videos go to val, stratified by class as far as the groups allow
  (scikit-learn's StratifiedGroupKFold into round(1 / val_fraction) folds, `seed` as random
  state; val is the fold holding out the most classes, then the one nearest val_fraction);
- `clip`: the seed's procedure, `val_fraction` of the clips stratified at random.

Every list entry must name a file that exists under the raw root, and every class a class of
the table: a problem stops here, naming the list and the line, not stages later.

Exclusions. `data/raw` is an output of the download stage, so an edit of its lists is undone by
the next `dvc repro`. A damaged file is left out for good by naming it in the exclusion list, a
committed file (`exclude.txt` at the repository root, a dependency of the split stage): one path
per line relative to `data/raw` (`stanford40/JPEGImages/<image>.jpg`, `hmdb51/<class>/<clip>.avi`),
`#` starts a comment. An excluded file is in no manifest, whichever lists (`split.lists`) are used,
and it need not exist.
"""
from __future__ import annotations

import logging
from collections.abc import Set
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES, label_of
from twostream.data import layout
from twostream.data.manifests import COLUMNS, check_manifest, outside_root
from twostream.data.sizes import held_out
from twostream.errors import ListError
from twostream.params import SUBSETS

log = logging.getLogger(__name__)

NO_EXCLUSIONS: frozenset[str] = frozenset()


def read_list(path: Path, missing: str = "split list not found; run the download stage first") -> list[str]:
    """The lines of a UTF-8 list file (a byte-order mark is allowed), stripped; a missing file is a ListError
    ending in `missing`, text that is not UTF-8 one naming the line."""
    if not path.is_file():
        raise ListError(f"{path}: {missing}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1  # exc.object: the bytes after a byte-order mark
        raise ListError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                        f"save the list as UTF-8") from None
    return [line.strip() for line in text.splitlines()]


def read_exclusions(path: Path | None) -> dict[str, frozenset[str]]:
    """The exclusion list (module docstring) as {dataset: paths relative to its raw root}; None: no list."""
    excluded: dict[str, set[str]] = {layout.STANFORD40: set(), layout.HMDB51: set()}
    if path is not None:
        for number, line in enumerate(read_list(path, "exclusion list not found (it may be empty, not absent)"),
                                      start=1):
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            dataset, _, rest = entry.partition("/")
            problem = outside_root(entry)
            if problem is None and (dataset not in excluded or not rest):
                problem = f"it must start with {layout.STANFORD40}/ or {layout.HMDB51}/"
            if problem:
                raise ListError(f"{path}:{number}: {entry!r} is not a file under data/raw ({problem}): write paths "
                                f"like {layout.STANFORD40}/{layout.stanford40_image('applauding_001.jpg')} or "
                                f"{layout.HMDB51}/{layout.hmdb51_video('clap', '<clip>.avi')}")
            excluded[dataset].add(rest)
    return {dataset: frozenset(paths) for dataset, paths in excluded.items()}


def drop_excluded(frame: pd.DataFrame, excluded: Set[str], dataset: str) -> pd.DataFrame:
    """`frame` without the rows whose path is excluded (logged, with any exclusion its lists do not name)."""
    if not excluded:
        return frame
    hit = frame["path"].isin(excluded)
    if hit.any():
        log.info("%s: %d listed file(s) left out by the exclusion list", dataset, frame.loc[hit, "path"].nunique())
    unknown = sorted(set(excluded) - set(frame["path"]))
    if unknown:
        log.warning("%s: %d excluded file(s) are not in its lists, e.g. %s/%s", dataset, len(unknown), dataset,
                    unknown[0])
    return frame[~hit]


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


def stanford40_items(root: Path, excluded: Set[str] = NO_EXCLUSIONS) -> pd.DataFrame:
    """All images of the 12 classes from the official train.txt + test.txt, less the `excluded` paths."""
    rows = []
    for list_name in layout.STANFORD40_LIST_FILES:
        path = layout.stanford40_list(root, list_name)
        for number, name in enumerate(read_list(path), start=1):
            if not name:
                continue
            problem = layout.bare_name(name)
            if problem:
                raise ListError(f"{path}:{number}: {name!r} {problem} (a list names images of "
                                f"{layout.STANFORD40_IMAGES}/ by file name)")
            try:
                cls = layout.stanford40_class_of(name)
            except ListError as exc:
                raise ListError(f"{path}:{number}: {exc}") from None
            if cls in STANFORD40_CLASSES:
                rows.append((layout.stanford40_image(name), cls, f"{path}:{number}"))
    frame = pd.DataFrame(rows, columns=["path", "class", "where"]).drop_duplicates("path")
    frame = drop_excluded(frame, excluded, layout.STANFORD40)
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


def hmdb51_items(root: Path, fold: int, excluded: Set[str] = NO_EXCLUSIONS) -> pd.DataFrame:
    """Videos of the 12 classes with their tag in official fold `fold`, less the `excluded` paths; listed
    videos must exist."""
    rows = []
    for cls in HMDB51_CLASSES:
        path = layout.hmdb51_list(root, cls, fold)
        for number, video, tag in layout.parse_hmdb51_list(path, read_list(path)):
            rows.append((layout.hmdb51_video(cls, video), label_of(cls), cls, tag, f"{path}:{number}", video))
    frame = drop_excluded(pd.DataFrame(rows, columns=[*COLUMNS, "tag", "where", "video"]), excluded, layout.HMDB51)
    for relative, cls, tag, where, video in zip(frame["path"], frame["class"], frame["tag"], frame["where"],
                                                frame["video"]):
        if tag != 0 and not (root / relative).is_file():
            raise ListError(f"{where}: {video} (tagged {layout.HMDB51_TAGS[tag]}) does not exist in "
                            f"{root / cls}; re-run the download stage, or tag it 0 (unused)")
    return frame[[*COLUMNS, "tag"]].reset_index(drop=True)


def hmdb51_sources(frame: pd.DataFrame) -> pd.Series:
    """The source video of every clip (`layout.hmdb51_source_of`), from its path `<class>/<file>`."""
    return pd.Series([layout.hmdb51_source_of(PurePosixPath(p).name, c) for p, c in zip(frame["path"], frame["class"])],
                     index=frame.index, dtype=object)


def grouped(frame: pd.DataFrame, fraction: float, random_state: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rest, held out): whole source videos held out, about `fraction` of the clips, stratified by class as far
    as the groups allow. A source with clips of several classes is one group. Every class keeps clips in the
    rest: the fold chosen is one that leaves every class some, if any does; otherwise the sources of a class that
    the fold would empty go back to the rest (so a class with one source video has no held-out clip)."""
    sources = hmdb51_sources(frame)
    folds = max(2, round(1 / fraction))
    if sources.nunique() < folds:
        raise ListError(f"split.val_groups: source: {sources.nunique()} source videos cannot make {folds} folds "
                        f"(split.val_fraction {fraction}); use more data, a larger val_fraction or val_groups: clip")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=random_state)
    target = held_out(len(frame), fraction)
    labels = frame["label"].to_numpy()
    every_class = set(labels)

    def rank(fold: tuple[np.ndarray, np.ndarray]) -> tuple[bool, int, int]:
        # every class kept in the rest, then the most classes held out, then the nearest to val_fraction
        rest_rows, out_rows = fold
        return set(labels[rest_rows]) == every_class, len(set(labels[out_rows])), -abs(len(out_rows) - target)

    _, out_rows = max(splitter.split(frame, labels, groups=sources), key=rank)  # the first on a tie
    held = np.zeros(len(frame), bool)
    held[out_rows] = True
    for label in sorted(every_class - set(labels[~held])):  # a class emptied: its sources stay in the rest
        held &= ~sources.isin(set(sources[labels == label])).to_numpy()
    if not held.any():
        raise ListError("split.val_groups: source: no source video can be held out for val without taking every "
                        "train clip of a class (too few source videos); use more data or val_groups: clip")
    return frame[~held], frame[held]


def shared_sources(first: pd.DataFrame, second: pd.DataFrame) -> set[str]:
    """Source videos with clips in both subsets (a val clip of one of them is partly a train clip)."""
    return set(hmdb51_sources(first)) & set(hmdb51_sources(second))


def split_hmdb51(items: pd.DataFrame, val_fraction: float, random_state: int,
                 val_groups: str) -> dict[str, pd.DataFrame]:
    """train (tag 1 minus val), val, test (tag 2); `val_groups` as `split.val_groups` (module docstring)."""
    train_all = items[items["tag"] == 1]
    test = items[items["tag"] == 2]
    for name, part in (("train (tag 1)", train_all), ("test (tag 2)", test)):
        if part.empty:
            raise ListError(f"HMDB51 split lists have no {name} videos")
    if val_groups == "source":
        train, val = grouped(train_all, val_fraction, random_state)
    elif val_groups == "clip":
        train, val = stratified(train_all, val_fraction, random_state, "split.val_fraction")
    else:
        raise ValueError(f"val_groups must be source or clip, got {val_groups!r}")
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


def seed_stanford40(root: Path, balance: bool, excluded: Set[str] = NO_EXCLUSIONS) -> dict[str, pd.DataFrame]:
    """The authors' exact Stanford40 lists (train/val oversampled by them when `balance`), less the `excluded`
    paths (every copy of an oversampled one)."""
    names = {"train": "train_files_osamp.txt" if balance else "train_files.txt",
             "val": "val_files_osamp.txt" if balance else "val_files.txt", "test": "test_files.txt"}
    out = {}
    for subset, list_name in names.items():
        path, files = _seed_list("Stanford40", list_name)
        classes = [layout.stanford40_class_of(f) for f in files]
        frame = pd.DataFrame({"path": [layout.stanford40_image(f) for f in files],
                              "label": [label_of(c) for c in classes], "class": classes})
        out[subset] = check_manifest(frame, "stanford40", path)
    return _seed_subsets(out, root, excluded, layout.STANFORD40)


def _seed_subsets(subsets: dict[str, pd.DataFrame], root: Path, excluded: Set[str],
                  dataset: str) -> dict[str, pd.DataFrame]:
    listed = pd.concat(subsets.values(), ignore_index=True)
    drop_excluded(listed, excluded, dataset)  # logs what is left out
    return {subset: _require_seed_files(frame[~frame["path"].isin(excluded)].reset_index(drop=True), root)
            for subset, frame in subsets.items()}


def seed_hmdb51(root: Path, excluded: Set[str] = NO_EXCLUSIONS) -> dict[str, pd.DataFrame]:
    """The authors' exact HMDB51 fold-1 lists (756 / 84 / 360 clips), less the `excluded` paths."""
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
        out[subset] = check_manifest(frame, "hmdb51", labels_path)
    return _seed_subsets(out, root, excluded, layout.HMDB51)
