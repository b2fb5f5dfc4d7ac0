"""The model table: every model the pipeline reports, with its dataset, inputs and stage.

The training stages, `evaluate`, the results table and `scripts/check_reproduction.py` all
read this table; adding a model starts here (see docs/architecture.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES


@dataclass(frozen=True)
class ModelEntry:
    name: str                 # models/<name>.pt, metrics/<name>.json, plots/*/<name>.*
    stage: str | None         # the stage that trains it (None: built from other models, not trained)
    dataset: str              # stanford40 | hmdb51: its training and test data
    dataset_title: str        # as in the results table
    title: str                # the model's column in the results table
    kind: str                 # spatial | temporal | twostream | late_fusion
    inputs: tuple[str, ...]   # "frames" (one RGB frame) and/or "flow" (a stack of 8 flow images)
    fuses: tuple[str, ...] = ()  # late_fusion: the trained models whose softmax scores it averages

    @property
    def classes(self) -> tuple[str, ...]:
        return STANFORD40_CLASSES if self.dataset == "stanford40" else HMDB51_CLASSES

    @property
    def label(self) -> str:
        return f"{self.dataset_title} {self.title}"


MODELS: tuple[ModelEntry, ...] = (
    ModelEntry("stanford40_frames", "stanford40_frames", "stanford40", "Stanford 40", "Frames", "spatial", ("frames",)),
    ModelEntry("hmdb51_frames", "hmdb51_frames", "hmdb51", "HMDB51", "Frames", "spatial", ("frames",)),
    ModelEntry("hmdb51_flow", "hmdb51_flow", "hmdb51", "HMDB51", "Optical flow", "temporal", ("flow",)),
    ModelEntry("hmdb51_twostream", "hmdb51_twostream", "hmdb51", "HMDB51", "Two-stream", "twostream",
               ("frames", "flow")),
    ModelEntry("hmdb51_late_fusion", None, "hmdb51", "HMDB51", "Late fusion", "late_fusion", ("frames", "flow"),
               fuses=("hmdb51_frames", "hmdb51_flow")),
)
TRAINED = tuple(m for m in MODELS if m.stage is not None)
VIDEO_MODELS = tuple(m for m in MODELS if m.dataset == "hmdb51")  # tested on one clip and on K clips per video
BY_NAME = {m.name: m for m in MODELS}
BY_STAGE = {m.stage: m for m in TRAINED}


def entry(name: str) -> ModelEntry:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; one of {', '.join(BY_NAME)}") from None


def model_path(models_dir: Path, name: str, position: str) -> Path:
    """Where a trained model's file is: models/<name>.pt; the HMDB51 frame models, one per frame
    position (the study), are models/hmdb51_frames/<position>.pt and `position` picks one."""
    if name == "hmdb51_frames":
        return Path(models_dir) / name / f"{position}.pt"
    return Path(models_dir) / f"{name}.pt"
