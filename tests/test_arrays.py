"""twostream.data.arrays owns the prepared data's file names; dvc.yaml spells them as literal paths."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twostream.classes import HMDB51_CLASSES
from twostream.data import arrays
from twostream.data.manifests import manifest_name
from twostream.datasets import hmdb51_subset, hmdb51_test_clips
from twostream.params import SUBSETS

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
DIRECTORIES = {"data/images": "images", "data/frames": "frames", "data/flow": "flow"}


def _paths(stage: dict, key: str) -> list[str]:
    return [p if isinstance(p, str) else next(iter(p)) for p in stage.get(key, [])]


def test_every_prepared_data_path_of_dvc_yaml_is_a_name_of_the_module():
    seen = 0
    for name, stage in STAGES.items():
        for path in _paths(stage, "deps") + _paths(stage, "outs"):
            directory, _, file = path.rpartition("/")
            if directory in DIRECTORIES:
                assert file in arrays.files(DIRECTORIES[directory]), f"stage {name}: {path} is not a name of arrays"
                seen += 1
    assert seen == 18  # hmdb51_frames 4, hmdb51_flow 5, hmdb51_twostream 9: their train and val files one by one


@pytest.mark.parametrize("stage, expected", [
    ("hmdb51_frames", [f"data/frames/{n}" for s in ("train", "val")
                  for n in (arrays.positions(s), manifest_name("hmdb51", s))]),
    ("hmdb51_flow", [f"data/flow/{n}" for s in ("train", "val") for n in (arrays.flow(s), manifest_name("hmdb51", s))]
     + [f"data/flow/{arrays.FLOW_SETTINGS}"]),
])
def test_training_stages_list_the_train_and_val_files_the_datasets_open(stage, expected):
    listed = [p for p in _paths(STAGES[stage], "deps") if p.startswith(("data/frames/", "data/flow/"))]
    assert sorted(listed) == sorted(expected)


def test_train_fusion_lists_both_streams_files():
    listed = {p for p in _paths(STAGES["hmdb51_twostream"], "deps") if p.startswith(("data/frames/", "data/flow/"))}
    assert listed == ({p for p in _paths(STAGES["hmdb51_frames"], "deps") if p.startswith("data/frames/")}
                      | {p for p in _paths(STAGES["hmdb51_flow"], "deps") if p.startswith("data/flow/")})


def test_names_are_distinct_and_keep_their_on_disk_spelling():
    for directory in DIRECTORIES.values():
        names = arrays.files(directory)
        assert len(set(names)) == len(names)
    assert arrays.positions("val") == "hmdb51_val_positions.npy"
    assert arrays.clip_flow() == "hmdb51_test_clips.npy"
    assert arrays.images("test") == "stanford40_test.npy"
    assert len(arrays.files("frames")) == 3 * len(SUBSETS) + 2
    with pytest.raises(ValueError, match="no prepared data directory 'raw'"):
        arrays.files("raw")


def test_the_stages_write_the_module_s_names(tmp_path):
    """The datasets open what the module names: a directory holding exactly those files reads."""
    frames, flow = tmp_path / "frames", tmp_path / "flow"
    frames.mkdir(), flow.mkdir()
    manifest = pd.DataFrame({"path": [f"{HMDB51_CLASSES[0]}/a.avi", f"{HMDB51_CLASSES[0]}/b.avi"], "label": [0, 0],
                             "class": [HMDB51_CLASSES[0]] * 2})
    for directory in (frames, flow):
        manifest.to_csv(directory / manifest_name("hmdb51", "test"), index=False)
    np.save(frames / arrays.positions("test"), np.zeros((2, 5, 8, 8, 3), np.uint8))
    np.save(frames / arrays.clip_frames(), np.zeros((2, 3, 8, 8, 3), np.uint8))
    np.save(flow / arrays.flow("test"), np.zeros((2, 8, 8, 8, 3), np.uint8))
    np.save(flow / arrays.clip_flow(), np.zeros((2, 3, 8, 8, 8, 3), np.uint8))
    assert len(hmdb51_subset(frames, flow, "test").labels) == 2
    assert hmdb51_test_clips(frames, flow)[1] == 3
