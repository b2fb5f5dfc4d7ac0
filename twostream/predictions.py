"""The per-video prediction files: one CSV per model and test protocol, in git (DVC plots, `cache: false`).

    plots/predictions/<model>.csv                the seed's protocol: one clip per test video
    plots/predictions/<model>_video.csv          video level (HMDB51 models): the mean softmax of K clips
    plots/predictions/frame_position_<pos>.csv   the frame-position study's other frame models (one clip)

Columns: `path` (the test video or image as its manifest names it), `actual` and `predicted` (class
names), then `p_<class>` for each class of the model's dataset in class order (probabilities in a fixed
format). Written by the evaluate stage (`evaluate.prediction_rows`); read by `twostream compare`, which
pairs two runs' files video by video.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd

from twostream.errors import InputError
from twostream.model_table import BY_NAME, ModelEntry
from twostream.params import FRAME_POSITIONS

DIRECTORY = PurePosixPath("plots/predictions")  # relative to the repository root
VIDEO_SUFFIX = "_video"
POSITION_PREFIX = "frame_position_"
COLUMNS = ("path", "actual", "predicted")


def file_name(model: str, video: bool = False) -> str:
    """plots/predictions/<file_name>: a model's predictions, one clip per video or at video level."""
    return f"{model}{VIDEO_SUFFIX if video else ''}.csv"


def position_file_name(position: str) -> str:
    """The predictions of the frame model trained at a study position other than `frames.position`."""
    return f"{POSITION_PREFIX}{position}.csv"


@dataclass(frozen=True)
class PredictionFile:
    """What a prediction file holds: the model (its table entry), the protocol and a label for tables."""
    name: str          # the file name
    entry: ModelEntry
    protocol: str      # "one clip" | "video" (HMDB51) | "images" (Stanford 40) | the frame position
    label: str


def describe(name: str) -> PredictionFile | None:
    """The PredictionFile of a file name in plots/predictions/, or None for a name that is not one."""
    if not name.endswith(".csv"):
        return None
    stem = name[:-len(".csv")]
    if stem.startswith(POSITION_PREFIX) and stem[len(POSITION_PREFIX):] in FRAME_POSITIONS:
        position = stem[len(POSITION_PREFIX):]
        entry = BY_NAME["hmdb51_frames"]
        return PredictionFile(name, entry, position, f"{entry.label} at {position} (one clip)")
    video = stem.endswith(VIDEO_SUFFIX) and stem[:-len(VIDEO_SUFFIX)] in BY_NAME
    model = stem[:-len(VIDEO_SUFFIX)] if video else stem
    if model not in BY_NAME or (video and BY_NAME[model].dataset != "hmdb51"):
        return None
    entry = BY_NAME[model]
    protocol = "video" if video else "one clip" if entry.dataset == "hmdb51" else "images"
    return PredictionFile(name, entry, protocol, f"{entry.label} ({protocol})")


def order(names: list[str]) -> list[str]:
    """Prediction file names in the model table's order: each model one clip then video, then positions."""
    known = [n for n in names if describe(n) is not None]
    rank = {file_name(m, video): i for i, (m, video) in enumerate((m, v) for m in BY_NAME for v in (False, True))}
    rank.update({position_file_name(p): len(rank) + i for i, p in enumerate(FRAME_POSITIONS)})
    return sorted(known, key=lambda n: rank[n])


def parse(text: str, source: str, entry: ModelEntry) -> pd.DataFrame:
    """A prediction file's rows, checked: the columns, one row per path, class names of the model's dataset."""
    try:
        rows = pd.read_csv(io.StringIO(text), dtype={"path": str, "actual": str, "predicted": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"{source}: not a readable prediction CSV ({' '.join(str(exc).split())}); "
                         f"re-run the evaluate stage there") from None
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise InputError(f"{source}: lacks column(s) {', '.join(missing)}; re-run the evaluate stage there")
    if not len(rows):
        raise InputError(f"{source}: no rows; re-run the evaluate stage there")
    duplicated = rows["path"][rows["path"].duplicated()]
    if len(duplicated):
        raise InputError(f"{source}:{duplicated.index[0] + 2}: path {duplicated.iloc[0]!r} appears twice")
    for column in ("actual", "predicted"):
        bad = rows.index[~rows[column].isin(entry.classes)]
        if len(bad):
            raise InputError(f"{source}:{bad[0] + 2}: {column} {rows[column][bad[0]]!r} is not a {entry.dataset} "
                             f"class; re-run the evaluate stage there")
    return rows
