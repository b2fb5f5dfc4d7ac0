"""The raw-layout contract: where the download stage puts the datasets, how files are named.

Both the real archives (`twostream.data.sources`) and the synthetic generator
(`twostream.data.synthetic`) write exactly this layout, and the split stage
(`twostream.data.splits`) reads it; every directory name, file-name pattern and its parser
lives here once.

    data/raw/stanford40/JPEGImages/<class>_<NNN>.jpg
    data/raw/stanford40/ImageSplits/train.txt, test.txt          one image file name per line
    data/raw/hmdb51/<class>/<video>.avi
    data/raw/hmdb51/testTrainMulti_7030_splits/<class>_test_split<fold>.txt
                                                                 lines "<video>.avi <tag>"

HMDB51's split lists tag every clip of a class for each of three official folds: 1 train,
2 test, 0 unused. Its clip names are `<source>_<class>_<body>_<camera>_<people>_<view>_<quality>_<k>.avi`:
up to three clips (k) are cut from one source video, whose title is the part before the class.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from twostream.errors import ListError

STANFORD40 = "stanford40"
HMDB51 = "hmdb51"

STANFORD40_IMAGES = "JPEGImages"
STANFORD40_LISTS = "ImageSplits"
STANFORD40_LIST_FILES = ("train.txt", "test.txt")

HMDB51_LISTS = "testTrainMulti_7030_splits"
HMDB51_FOLDS = (1, 2, 3)
HMDB51_TAGS = {0: "unused", 1: "train", 2: "test"}
VIDEO_SUFFIX = ".avi"

_ATTRIBUTES = 6  # name fields after the class: body, camera, people, view, quality, clip number
_STANFORD40_NAME = re.compile(r"(?P<cls>[A-Za-z_]+)_(?P<num>\d+)\.jpg")
# The 40 actions of Stanford 40 (ImageSplits/actions.txt): the official lists name all of them, the
# pipeline keeps 12 (`twostream.classes`); any other class in a list is a mistake.
STANFORD40_ACTIONS = frozenset((
    "applauding", "blowing_bubbles", "brushing_teeth", "cleaning_the_floor", "climbing", "cooking",
    "cutting_trees", "cutting_vegetables", "drinking", "feeding_a_horse", "fishing", "fixing_a_bike",
    "fixing_a_car", "gardening", "holding_an_umbrella", "jumping", "looking_through_a_microscope",
    "looking_through_a_telescope", "phoning", "playing_guitar", "playing_violin", "pouring_liquid",
    "pushing_a_cart", "reading", "riding_a_bike", "riding_a_horse", "rowing_a_boat", "running",
    "shooting_an_arrow", "smoking", "taking_photos", "texting_message", "throwing_frisby",
    "using_a_computer", "walking_the_dog", "washing_dishes", "watching_TV", "waving_hands",
    "writing_on_a_board", "writing_on_a_book",
))


def bare_name(name: str) -> str | None:
    """Why a list entry that must be a bare file name is not one (None when it is)."""
    if "/" in name or "\\" in name or "\0" in name:
        return "must be a file name without a directory"
    if name in (".", ".."):
        return "is not a file name"
    return None


def stanford40_image(file_name: str) -> str:
    """Path of an image relative to the Stanford40 root: `JPEGImages/<file name>`."""
    return f"{STANFORD40_IMAGES}/{file_name}"


def stanford40_class_of(file_name: str) -> str:
    """`riding_a_bike_007.jpg` -> `riding_a_bike`; other names, and classes that are not one of the
    40 actions, are a ListError."""
    name = PurePosixPath(file_name).name
    match = _STANFORD40_NAME.fullmatch(name)
    if match is None:
        raise ListError(f"not a Stanford40 image name (<class>_<NNN>.jpg): {file_name!r}")
    if match["cls"] not in STANFORD40_ACTIONS:
        raise ListError(f"unknown class {match['cls']!r} in {name!r} (not one of the 40 Stanford 40 actions)")
    return match["cls"]


def stanford40_list(root: Path, name: str) -> Path:
    """One of the official lists (`train.txt`, `test.txt`) under the Stanford40 root."""
    return Path(root) / STANFORD40_LISTS / name


def hmdb51_video(cls: str, file_name: str) -> str:
    """Path of a clip relative to the HMDB51 root: `<class>/<file name>`."""
    return f"{cls}/{file_name}"


def hmdb51_list_name(cls: str, fold: int) -> str:
    """File name of a class's split list for one official fold."""
    return f"{cls}_test_split{fold}.txt"


def hmdb51_list(root: Path, cls: str, fold: int) -> Path:
    return Path(root) / HMDB51_LISTS / hmdb51_list_name(cls, fold)


def parse_hmdb51_list(path: Path, lines: list[str]) -> list[tuple[int, str, int]]:
    """Lines `<video>.avi <tag>` (tag 0, 1 or 2) -> [(line number, video, tag)], errors naming file and line."""
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if (len(parts) != 2 or not parts[0].endswith(VIDEO_SUFFIX)
                or parts[1] not in {str(t) for t in HMDB51_TAGS}):
            raise ListError(f"{path}:{number}: expected '<video>{VIDEO_SUFFIX} <0|1|2>', got {line.strip()!r}")
        problem = bare_name(parts[0])
        if problem:
            raise ListError(f"{path}:{number}: {parts[0]!r} {problem} (a list names clips of its class's "
                            f"directory by file name)")
        entries.append((number, parts[0], int(parts[1])))
    return entries


def hmdb51_source_of(file_name: str, cls: str) -> str:
    """The source video a clip was cut from: the part of its name before `_<class>_`.

    `Amber_River_drink_u_nm_np1_fr_goo_1.avi` of class drink -> `Amber_River`. A name without
    the class in it is its own source (every clip then counts as a separate video).
    """
    stem = PurePosixPath(file_name).stem
    head = "_".join(stem.split("_")[:-_ATTRIBUTES])  # drop body, camera, people, view, quality, k
    if head.endswith(f"_{cls}") and len(head) > len(cls) + 1:
        return head[:-len(cls) - 1]
    before, sep, _ = stem.rpartition(f"_{cls}_")
    return before if sep and before else stem
