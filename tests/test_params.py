import copy

import pytest
import yaml

from twostream.params import ParamsError, load_params, parse_params


@pytest.fixture(scope="module")
def raw():
    with open("params.yaml") as fh:
        return yaml.safe_load(fh)


def mutate(raw, dotted, value=None, delete=False):
    raw = copy.deepcopy(raw)
    *parents, last = dotted.split(".")
    node = raw
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def test_committed_params_are_valid():
    params = load_params("params.yaml")
    assert params.data.source == "synthetic"
    assert params.stage("train_flow").augment is False


@pytest.mark.parametrize("dotted, value, message", [
    ("image.size", -64, "image.size: must be >= 32"),
    ("flow.method", "lucas_kanade", "flow.method: 'lucas_kanade' is not one of dis, farneback, raft_small, raft_large"),
    ("split.test_fraction", 1.5, "split.test_fraction: must be a fraction in (0, 1)"),
    ("split.val_fraction", 0, "split.val_fraction: must be a fraction in (0, 1)"),
    ("frames.position", "centre", "frames.position: 'centre' is not one of first, first_middle, middle"),
    ("train_spatial.epochs", 2.5, "train_spatial.epochs: must be an integer"),
    ("train.amp", "yes", "train.amp: must be true or false"),
    ("data.synthetic.max_frames", 10, "data.synthetic.max_frames: must be >= min_frames"),
    ("augment.color_jitter", [0.4, 0.4], "augment.color_jitter: must be [brightness, contrast, saturation, hue]"),
    ("split.hmdb51_split", 4, "split.hmdb51_split: must be 1, 2 or 3"),
])
def test_bad_value_names_the_key(raw, dotted, value, message):
    with pytest.raises(ParamsError) as err:
        parse_params(mutate(raw, dotted, value))
    assert message in str(err.value)


def test_unknown_key_is_rejected(raw):
    with pytest.raises(ParamsError, match=r"flow.metod: unknown key \(known keys here: method, "):
        parse_params(mutate(raw, "flow.metod", "dis"))


def test_missing_key_is_rejected(raw):
    with pytest.raises(ParamsError, match=r"^train.cyclic.decay: missing key$"):
        parse_params(mutate(raw, "train.cyclic.decay", delete=True))


def test_int_is_accepted_for_float(raw):
    params = parse_params(mutate(raw, "train_spatial.lr", 1))
    assert params.train_spatial.lr == 1.0 and isinstance(params.train_spatial.lr, float)


def test_error_names_the_file(tmp_path, raw):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(mutate(raw, "image.size", 0)))
    with pytest.raises(ParamsError, match=rf"^{path}: image.size: must be >= 32"):
        load_params(path)
    with pytest.raises(ParamsError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    path.write_text("seed: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_unknown_training_stage(raw):
    with pytest.raises(ParamsError, match="unknown training stage 'train_audio'"):
        parse_params(raw).stage("train_audio")


@pytest.mark.parametrize("changes, message", [
    ({"image.size": 100}, "image.size: must be a multiple of 32"),
    ({"image.size": 96, "flow.method": "raft_large"}, "image.size: torchvision's RAFT needs frames of at least 128 px"),
    ({"train.schedule": "cyclic", "train_fusion.lr": 1e-5},
     "train.cyclic.base_lr: must be below every stage's lr (the first cycle's peak); train_fusion.lr is 1e-05"),
])
def test_inconsistent_params_fail_before_any_stage_runs(raw, changes, message):
    for dotted, value in changes.items():
        raw = mutate(raw, dotted, value)
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert message in str(err.value)


def test_raft_at_224_and_cyclic_with_defaults_are_valid(raw):
    params = parse_params(mutate(mutate(mutate(raw, "image.size", 224), "flow.method", "raft_small"),
                                 "train.schedule", "cyclic"))
    assert params.flow.method == "raft_small"
