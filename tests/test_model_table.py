"""The model table: one row per reported model, read by the training stages and evaluate."""
from pathlib import Path

import pytest

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.model_table import BY_NAME, BY_STAGE, MODELS, TRAINED, VIDEO_MODELS, entry, model_path
from twostream.models import MODEL_KINDS
from twostream.params import TRAIN_STAGES


def test_every_training_stage_trains_one_model():
    assert set(BY_STAGE) == set(TRAIN_STAGES)
    assert [m.name for m in MODELS] == ["stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream",
                                        "hmdb51_late_fusion"]
    assert TRAINED == MODELS[:4]  # every reported model but the late fusion is trained by a stage
    assert BY_STAGE["hmdb51_twostream"].inputs == ("frames", "flow") and BY_STAGE["hmdb51_flow"].inputs == ("flow",)
    assert all(m.kind in MODEL_KINDS for m in TRAINED)


def test_late_fusion_averages_two_trained_models_of_its_dataset():
    late = BY_NAME["hmdb51_late_fusion"]
    assert late.stage is None and late.kind == "late_fusion" and late.kind not in MODEL_KINDS
    assert late.fuses == ("hmdb51_frames", "hmdb51_flow")
    assert all(BY_NAME[p] in TRAINED and BY_NAME[p].dataset == late.dataset for p in late.fuses)
    assert late.inputs == tuple(i for p in late.fuses for i in BY_NAME[p].inputs)
    assert not any(m.fuses for m in TRAINED)
    # tested on videos (one clip and K clips per video): the HMDB51 models, in table order
    assert [m.name for m in VIDEO_MODELS] == ["hmdb51_frames", "hmdb51_flow", "hmdb51_twostream",
                                              "hmdb51_late_fusion"]


def test_classes_and_labels():
    assert BY_NAME["stanford40_frames"].classes == STANFORD40_CLASSES
    assert BY_NAME["hmdb51_flow"].classes == HMDB51_CLASSES
    assert BY_NAME["hmdb51_twostream"].label == "HMDB51 Two-stream"
    assert BY_NAME["stanford40_frames"].label == "Stanford 40 Frames"


def test_model_path():
    models = Path("models")
    assert model_path(models, "hmdb51_frames", "first_middle") == models / "hmdb51_frames" / "first_middle.pt"
    assert model_path(models, "hmdb51_flow", "middle") == models / "hmdb51_flow.pt"
    assert model_path(models, "stanford40_frames", "last") == models / "stanford40_frames.pt"


def test_unknown_model_names_the_known_ones():
    assert entry("hmdb51_flow") is BY_NAME["hmdb51_flow"]
    with pytest.raises(KeyError, match="unknown model 'audio'; one of stanford40_frames, hmdb51_frames"):
        entry("audio")
