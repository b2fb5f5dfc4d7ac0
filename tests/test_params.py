import copy
import dataclasses

import pytest
import yaml

from twostream.errors import ParamsError
from twostream.params import (FLOW_FRAMES, FLOW_PAIRS, RAFT_METHODS, RAFT_MIN_SIZE, SUBSETS, DownloadParams,
                              RuntimeParams, load_params, load_runtime, parse_params, read_yaml, usable_cpus)


@pytest.fixture(scope="module")
def raw():
    return read_yaml("params.yaml")


@pytest.fixture(scope="module")
def raw_runtime():
    return read_yaml("runtime.yaml")


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
    assert params.stage("hmdb51_flow").augment is True  # the demo translates flow stacks (the seed does not)


def test_constants():
    assert (FLOW_FRAMES, FLOW_PAIRS) == (9, 8)
    assert SUBSETS == ("train", "val", "test")
    assert RAFT_METHODS == ("raft_small", "raft_large") and RAFT_MIN_SIZE == 128
    assert usable_cpus() >= 1


@pytest.mark.parametrize("dotted, value, message", [
    ("image.size", -64, "image.size: must be a multiple of 32 (>= 32)"),
    ("image.size", 0, "image.size: must be a multiple of 32 (>= 32)"),
    ("flow.method", "lucas_kanade", "flow.method: 'lucas_kanade' is not one of dis, farneback, raft_small, raft_large"),
    ("split.test_fraction", 1.5, "split.test_fraction: must be a fraction in (0, 1)"),
    ("split.val_fraction", 0, "split.val_fraction: must be a fraction in (0, 1)"),
    ("frames.position", "centre", "frames.position: 'centre' is not one of first, first_middle, middle"),
    ("stanford40_frames.epochs", 2.5, "stanford40_frames.epochs: must be an integer"),
    ("train.amp", "yes", "train.amp: must be true or false"),
    ("data.synthetic.max_frames", 10, "data.synthetic.max_frames: must be >= min_frames"),
    ("augment.color_jitter", [0.4, 0.4], "augment.color_jitter: must be [brightness, contrast, saturation, hue]"),
    ("split.hmdb51_fold", 4, "split.hmdb51_fold: must be 1, 2 or 3"),
    ("split.val_groups", "video", "split.val_groups: 'video' is not one of source, clip"),
    ("split.val_fraction", 0.6, "split.val_fraction: must be <= 0.5 with split.val_groups: source"),
    ("video_test.clips", 0, "video_test.clips: must be > 0"),
    ("video_test.clips", 2.5, "video_test.clips: must be an integer"),
])
def test_bad_value_names_the_key(raw, dotted, value, message):
    with pytest.raises(ParamsError) as err:
        parse_params(mutate(raw, dotted, value))
    assert message in str(err.value)


@pytest.mark.parametrize("dotted", ["train.device", "train.loader_workers", "train.pin_memory", "flow.device",
                                    "flow.batch_size", "data.real", "split.hmdb51_split"])
def test_runtime_and_renamed_keys_are_not_params(raw, dotted):
    """How a stage runs lives in runtime.yaml; the old keys are now unknown to params.yaml."""
    with pytest.raises(ParamsError, match=rf"^{dotted}: unknown key"):
        parse_params(mutate(raw, dotted, 1))


def test_unknown_key_is_rejected(raw):
    with pytest.raises(ParamsError, match=r"flow.metod: unknown key \(known keys here: method, "):
        parse_params(mutate(raw, "flow.metod", "dis"))


def test_missing_key_is_rejected(raw):
    with pytest.raises(ParamsError, match=r"^train.cyclic.decay: missing key$"):
        parse_params(mutate(raw, "train.cyclic.decay", delete=True))


def test_fusion_lr_belongs_to_the_fusion_stage_only(raw):
    assert parse_params(raw).hmdb51_twostream.fusion_lr == raw["hmdb51_twostream"]["fusion_lr"]
    with pytest.raises(ParamsError, match=r"^hmdb51_twostream.fusion_lr: missing key$"):
        parse_params(mutate(raw, "hmdb51_twostream.fusion_lr", delete=True))
    with pytest.raises(ParamsError, match=r"^hmdb51_twostream.fusion_lr: must be > 0, got 0"):
        parse_params(mutate(raw, "hmdb51_twostream.fusion_lr", 0))
    with pytest.raises(ParamsError, match=r"^hmdb51_flow.fusion_lr: unknown key"):
        parse_params(mutate(raw, "hmdb51_flow.fusion_lr", 1e-3))


def test_int_is_accepted_for_float(raw):
    params = parse_params(mutate(raw, "stanford40_frames.lr", 1))
    assert params.stanford40_frames.lr == 1.0 and isinstance(params.stanford40_frames.lr, float)


def test_error_names_the_file(tmp_path, raw):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(mutate(raw, "image.size", 0)))
    with pytest.raises(ParamsError, match=rf"^{path}: image.size: must be a multiple of 32 \(>= 32\)"):
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
    ({"train.schedule": "cyclic", "hmdb51_twostream.lr": 1e-5},
     "train.cyclic.base_lr: must be below every stage's lr (the first cycle's peak); hmdb51_twostream.lr is 1e-05"),
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
    assert parse_params(mutate(mutate(raw, "image.size", 128), "flow.method", "raft_large")).image.size == 128


# ----------------------------------------------------------------------------- YAML 1.2, as DVC reads it

def test_read_yaml_parses_yaml_1_2_floats(tmp_path):
    """PyYAML (YAML 1.1) reads `1e-3` and `.5`-less forms as strings; DVC, and read_yaml, read floats."""
    path = tmp_path / "numbers.yaml"
    path.write_text("a: 1e-3\nb: 1E-3\nc: .5\nd: 1.0e-3\ne: 3\nf: true\n")
    values = read_yaml(path)
    assert values == {"a": 1e-3, "b": 1e-3, "c": 0.5, "d": 1e-3, "e": 3, "f": True}
    assert all(type(values[k]) is float for k in "abcd")
    assert type(values["e"]) is int


def test_params_with_lr_1e_minus_3_validate(tmp_path):
    text = open("params.yaml").read()
    assert "  lr: 1.0e-3\n" in text
    path = tmp_path / "params.yaml"
    path.write_text(text.replace("  lr: 1.0e-3\n", "  lr: 1e-3\n", 1))
    assert "lr: 1e-3" in path.read_text()
    params = load_params(path)
    assert params.stanford40_frames.lr == 1e-3 and isinstance(params.stanford40_frames.lr, float)


# ----------------------------------------------------------------------------- runtime.yaml

def test_committed_runtime_is_valid():
    runtime = load_runtime("runtime.yaml")
    assert isinstance(runtime, RuntimeParams) and isinstance(runtime.downloads, DownloadParams)
    assert runtime.device in ("auto", "cpu", "cuda")
    assert runtime.downloads.hmdb51_videos_url.endswith("/hmdb51_org.rar")
    # the old RealParams fields, all now in runtime.yaml's downloads group
    assert [f.name for f in dataclasses.fields(DownloadParams)] == [
        "cache_dir", "stanford40_images_url", "stanford40_splits_url", "hmdb51_videos_url", "hmdb51_splits_url"]


def test_cpu_processes():
    runtime = load_runtime("runtime.yaml")
    assert dataclasses.replace(runtime, prep_processes=3).cpu_processes() == 3
    assert dataclasses.replace(runtime, prep_processes=0).cpu_processes() == usable_cpus()


@pytest.mark.parametrize("dotted, value, message", [
    ("device", "tpu", "device: 'tpu' is not one of auto, cpu, cuda"),
    ("torchrun_processes", 0, "torchrun_processes: must be > 0"),
    ("loader_workers", -1, "loader_workers: must be >= 0"),
    ("flow_batch_size", 0, "flow_batch_size: must be > 0"),
    ("prep_processes", -2, "prep_processes: must be >= 0"),
    ("pin_memory", "yes", "pin_memory: must be true or false"),
    ("downloads.cache_dir", "  ", "downloads.cache_dir: must not be empty"),
    ("downloads.hmdb51_splits_url", "", "downloads.hmdb51_splits_url: must not be empty"),
    ("downloads.mirror", "x", "downloads.mirror: unknown key"),
    ("seed", 0, "seed: unknown key"),
    # sizes that bound the work
    ("torchrun_processes", 1000, "torchrun_processes: must be <= 64 (training processes on this machine), got 1000"),
    ("loader_workers", 65, "loader_workers: must be <= 64 (DataLoader workers per process), got 65"),
    ("flow_batch_size", 10**6, "flow_batch_size: must be <= 256"),
    ("prep_processes", 257, "prep_processes: must be <= 256 (data-preparation worker processes), got 257"),
])
def test_bad_runtime_names_the_file_and_key(tmp_path, raw_runtime, dotted, value, message):
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump(mutate(raw_runtime, dotted, value)))
    with pytest.raises(ParamsError) as err:
        load_runtime(path)
    assert str(err.value).startswith(f"{path}: {message}")


def test_missing_runtime_key(tmp_path, raw_runtime):
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump(mutate(raw_runtime, "downloads.cache_dir", delete=True)))
    with pytest.raises(ParamsError, match=rf"^{path}: downloads.cache_dir: missing key$"):
        load_runtime(path)


# ----------------------------------------------------------------------------- bounds on what sizes the work

@pytest.mark.parametrize("dotted, value, message", [
    ("image.size", 100_000, "image.size: must be <= 512 (the prepared arrays grow with its square; the seed uses 224), "
                            "got 100000"),
    ("image.size", 544, "image.size: must be <= 512"),
    ("flow.raft_updates", 10**9, "flow.raft_updates: must be <= 32 (flow time grows with it; the seed uses 12), "
                                 "got 1000000000"),
    ("video_test.clips", 10**9, "video_test.clips: must be <= 30 (the test arrays and flow time grow with it; the "
                                "seed's full setting uses 10), got 1000000000"),
    ("train.batch_size", 4096, "train.batch_size: must be <= 1024 (a batch must fit in memory; the seed uses 32)"),
    ("seed", 2**32, "seed: must be <= 4294967295 (numpy's and scikit-learn's random states are 32-bit), "
                    "got 4294967296"),
])
def test_params_that_size_the_work_have_upper_bounds(raw, dotted, value, message):
    with pytest.raises(ParamsError) as err:
        parse_params(mutate(raw, dotted, value))
    assert str(err.value).startswith(message)


def test_the_bounds_allow_every_committed_setting_and_their_maxima(raw):
    from twostream.params import (MAX_BATCH_SIZE, MAX_IMAGE_SIZE, MAX_RAFT_UPDATES, MAX_SEED, MAX_TEST_CLIPS,
                                  apply_overrides, read_overrides)

    full = apply_overrides(raw, read_overrides("params-full.yaml"))
    assert parse_params(full).image.size == 224 and parse_params(full).video_test.clips == 10
    assert parse_params(full).flow.raft_updates == 12
    for extra in ("params-realsize.yaml", "params-dryrun.yaml"):
        parse_params(apply_overrides(full, read_overrides(extra)))
    top = {"image.size": MAX_IMAGE_SIZE, "flow.raft_updates": MAX_RAFT_UPDATES, "video_test.clips": MAX_TEST_CLIPS,
           "train.batch_size": MAX_BATCH_SIZE, "seed": MAX_SEED}
    params = parse_params(apply_overrides(full, top))
    assert (params.image.size, params.seed) == (MAX_IMAGE_SIZE, MAX_SEED)


def test_the_largest_seed_splits(raw):
    """numpy and scikit-learn accept the largest seed wherever the pipeline seeds them."""
    import numpy as np
    import pandas as pd

    from twostream.data.splits import oversample, split_stanford40
    from twostream.params import MAX_SEED
    from twostream.train import seed_everything

    seed_everything(parse_params(mutate(raw, "seed", MAX_SEED)).seed)
    items = pd.DataFrame({"path": [f"p{i}" for i in range(96)], "label": np.arange(96) % 12,
                          "class": [f"c{i % 12}" for i in range(96)]})
    subsets = split_stanford40(items, 0.25, 0.25, MAX_SEED, balance=True)
    assert sum(len(s) for s in subsets.values()) >= 96 and len(oversample(subsets["test"], MAX_SEED)) == 24


@pytest.mark.parametrize("name, loader", [("params.yaml", load_params), ("runtime.yaml", load_runtime)])
def test_a_file_that_is_not_utf8_names_the_file_and_line(tmp_path, name, loader):
    text = open(name, encoding="utf-8").read().replace("\n", "\n# caf\u00e9: a comment\n", 3)
    path = tmp_path / name
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ParamsError) as err:
        loader(path)
    line = text.encode("latin-1")[:text.encode("latin-1").index(b"\xe9")].count(b"\n") + 1
    assert str(err.value) == f"{path}:{line}: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_a_params_file_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + open("params.yaml", "rb").read())
    assert load_params(path) == load_params("params.yaml")
