"""The full setting (params-full.yaml over params.yaml) holds every number of the seed report."""
import pandas as pd
import pytest

from twostream.data import splits
from twostream.errors import ListError, ParamsError
from twostream.params import apply_overrides, main, parse_params, read_overrides, read_yaml

# The seed's numbers (ARCHITECTURE section 5), by dotted key.
SEED = {
    "data.source": "real", "split.lists": "seed", "split.test_fraction": 0.1, "split.val_fraction": 0.1,
    "split.oversample": True, "split.hmdb51_fold": 1, "seed": 0,
    "image.size": 224, "frames.position": "middle",
    "flow.method": "raft_large", "flow.raft_updates": 12,
    "model.pretrained": "imagenet",
    "train.batch_size": 32, "train.weight_decay": 0.0, "train.schedule": "step",
    "train.cyclic.base_lr": 1e-5, "train.cyclic.step_size_up": 5, "train.cyclic.step_size_down": 5,
    "train.cyclic.decay": 0.5,
    "augment.color_jitter": [0.4, 0.4, 0.4, 0.3], "augment.grayscale_p": 0.1, "augment.autocontrast_p": 0.1,
    "augment.sharpness_factor": 2.0, "augment.sharpness_p": 0.1, "augment.hflip_p": 0.25,
    "augment.perspective_distortion": 0.3, "augment.perspective_p": 0.1, "augment.rotation_degrees": 15.0,
    "stanford40_frames.epochs": 21, "stanford40_frames.step.step_size": 5, "stanford40_frames.step.gamma": 0.5,
    "stanford40_frames.lr": 1e-4, "stanford40_frames.step.warmup_epochs": 0, "stanford40_frames.augment": True,
    "hmdb51_frames.epochs": 11, "hmdb51_frames.step.step_size": 5, "hmdb51_frames.step.gamma": 0.5, "hmdb51_frames.lr": 1e-4, "hmdb51_frames.step.warmup_epochs": 0,
    "hmdb51_frames.augment": True,
    "hmdb51_flow.epochs": 21, "hmdb51_flow.step.step_size": 5, "hmdb51_flow.step.gamma": 0.5, "hmdb51_flow.lr": 1e-4, "hmdb51_flow.step.warmup_epochs": 0,
    "hmdb51_flow.augment": False,
    "hmdb51_twostream.epochs": 6, "hmdb51_twostream.step.step_size": 2, "hmdb51_twostream.step.gamma": 0.3, "hmdb51_twostream.lr": 1e-4, "hmdb51_twostream.step.warmup_epochs": 0,
    "hmdb51_twostream.fusion_lr": 1e-4,  # the seed trains the whole fusion model at one lr
    "hmdb51_twostream.augment": True,
}


@pytest.fixture(scope="module")
def full():
    base = read_yaml("params.yaml")
    return parse_params(apply_overrides(base, read_overrides("params-full.yaml")))


@pytest.mark.parametrize("dotted, value", SEED.items(), ids=list(SEED))
def test_full_setting_matches_the_seed(full, dotted, value):
    node = full
    for key in dotted.split("."):
        node = getattr(node, key)
    assert node == pytest.approx(value) if isinstance(value, float) else node == value


def test_overrides_print_dvc_set_params(capsys):
    main(["params-full.yaml"])
    out = capsys.readouterr().out
    assert "-S 'image.size=224'" in out and "-S 'flow.method=\"raft_large\"'" in out


def test_several_override_files_apply_in_order(tmp_path, capsys):
    later = tmp_path / "later.yaml"
    later.write_text("image.size: 256\ntrain.batch_size: 16\n")
    main(["params-full.yaml", str(later)])
    out = capsys.readouterr().out
    assert "-S 'image.size=256'" in out and "-S 'image.size=224'" not in out
    assert "-S 'train.batch_size=16'" in out and "-S 'flow.method=\"raft_large\"'" in out
    # the merged result is validated: a later file can make an earlier valid one invalid
    bad = tmp_path / "bad.yaml"
    bad.write_text("image.size: 96\n")  # < 128 px with params-full's RAFT
    with pytest.raises(SystemExit, match="error: image.size: torchvision's RAFT needs frames of at least 128"):
        main(["params-full.yaml", str(bad)])
    with pytest.raises(SystemExit, match="usage"):
        main([])


def test_unknown_override_key_is_an_error(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("flow.metod: dis\n")
    base = read_yaml("params.yaml")
    with pytest.raises(ParamsError, match=r"o.yaml: flow.metod: no such key"):
        apply_overrides(base, read_overrides(path), str(path))


def touch_all(root, paths):
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).touch()


def test_seed_lists_reproduce_the_authors_counts(tmp_path):
    names = set()
    for list_name in ("train_files.txt", "val_files.txt", "test_files.txt"):
        names |= set((splits.SEED_LISTS / "Stanford40" / list_name).read_text().split())
    touch_all(tmp_path / "s40", [f"JPEGImages/{n}" for n in names])
    parts = splits.seed_stanford40(tmp_path / "s40", balance=True)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [2868, 324, 304]
    assert (parts["train"]["label"].value_counts() == 239).all()
    assert (parts["val"]["label"].value_counts() == 27).all()
    unique = {k: set(v["path"]) for k, v in parts.items()}
    assert not (unique["train"] & unique["val"]) and not (unique["train"] & unique["test"])
    plain = splits.seed_stanford40(tmp_path / "s40", balance=False)
    assert [len(plain[k]) for k in ("train", "val", "test")] == [2459, 274, 304]

    hmdb_paths = []
    for split in ("train", "val", "test"):
        files = (splits.SEED_LISTS / "HMDB51" / f"{split}_files.txt").read_text().splitlines()
        labels = (splits.SEED_LISTS / "HMDB51" / f"{split}_labels.txt").read_text().splitlines()
        hmdb_paths += [f"{c}/{f}" for f, c in zip(files, labels) if f]
    touch_all(tmp_path / "hmdb", hmdb_paths)
    hparts = splits.seed_hmdb51(tmp_path / "hmdb")
    assert [len(hparts[k]) for k in ("train", "val", "test")] == [756, 84, 360]
    assert (hparts["test"]["label"].value_counts() == 30).all()
    assert isinstance(hparts["train"], pd.DataFrame) and list(hparts["train"].columns) == ["path", "label", "class"]


def test_seed_lists_on_synthetic_data_fail_clearly(tmp_path):
    with pytest.raises(ListError, match=r"split.lists: seed names 756 file\(s\) missing"):
        splits.seed_hmdb51(tmp_path)
