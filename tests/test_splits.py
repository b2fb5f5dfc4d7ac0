import hashlib

import numpy as np
import pandas as pd
import pytest

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.data import layout, splits
from twostream.errors import ListError
from twostream.params import SUBSETS


def write_stanford40(root, counts):
    """Official lists: half of each class in train.txt, the rest in test.txt, plus a non-12 class.
    Every listed image exists (empty files: the split stage only checks they are there)."""
    (root / "ImageSplits").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    train, test = [], []
    for cls, count in counts.items():
        names = [f"{cls}_{i:03d}.jpg" for i in range(1, count + 1)]
        for name in names:
            (root / "JPEGImages" / name).touch()
        train += names[: count // 2]
        test += names[count // 2:]
    (root / "ImageSplits" / "train.txt").write_text("\n".join(train) + "\n")
    (root / "ImageSplits" / "test.txt").write_text("\n".join(test) + "\n")


@pytest.fixture
def stanford(tmp_path):
    counts = {cls: 50 + 10 * i for i, cls in enumerate(STANFORD40_CLASSES)}  # 50..160, unequal
    counts["fixing_a_car"] = 40  # one of the 28 other classes: must be ignored
    write_stanford40(tmp_path, counts)
    return tmp_path, counts


def test_stanford40_items_keep_only_the_12_classes(stanford):
    root, counts = stanford
    items = splits.stanford40_items(root)
    assert len(items) == sum(counts.values()) - 40
    assert set(items["class"]) == set(STANFORD40_CLASSES)
    assert items["path"].str.startswith("JPEGImages/").all()
    assert (items["label"] == items["class"].map(STANFORD40_CLASSES.index)).all()


def test_stanford40_split_counts_disjoint_and_balanced(stanford):
    root, counts = stanford
    items = splits.stanford40_items(root)
    parts = splits.split_stanford40(items, 0.1, 0.1, random_state=0, balance=True)
    total = len(items)  # 12 classes, 50..160 images: 1260
    n_test = 126  # ceil(0.1 * 1260)
    n_val = 114  # ceil(0.1 * 1134)
    n_train = total - n_test - n_val
    assert len(parts["test"]) == n_test
    unique = {k: set(v["path"]) for k, v in parts.items()}
    assert len(unique["train"]) == n_train and len(unique["val"]) == n_val
    assert not unique["train"] & unique["val"]
    assert not unique["train"] & unique["test"]
    assert not unique["val"] & unique["test"]
    # oversampled: every class has as many rows as the largest one; test untouched
    for name in ("train", "val"):
        sizes = parts[name]["label"].value_counts()
        assert sizes.nunique() == 1 and len(sizes) == 12
    assert parts["test"]["path"].is_unique
    assert parts["test"]["label"].value_counts().max() > parts["test"]["label"].value_counts().min()
    # stratified test: each class close to 10% of it
    share = parts["test"]["label"].value_counts().sort_index() / items["label"].value_counts().sort_index()
    assert share.between(0.06, 0.14).all()


def test_oversample_keeps_originals_in_order_then_duplicates():
    frame = pd.DataFrame({"path": ["a1", "a2", "a3", "b1"], "label": [0, 0, 0, 1], "class": ["a"] * 3 + ["b"]})
    out = splits.oversample(frame, random_state=0)
    assert list(out["path"][:3]) == ["a1", "a2", "a3"]
    assert list(out["path"][3:]) == ["b1", "b1", "b1"]


def test_no_oversampling_when_disabled(stanford):
    root, _ = stanford
    parts = splits.split_stanford40(splits.stanford40_items(root), 0.1, 0.1, random_state=0, balance=False)
    assert parts["train"]["path"].is_unique and parts["val"]["path"].is_unique


def test_bad_stanford40_name(tmp_path):
    (tmp_path / "ImageSplits").mkdir()
    (tmp_path / "ImageSplits" / "train.txt").write_text("applauding.jpg\n")
    (tmp_path / "ImageSplits" / "test.txt").write_text("")
    with pytest.raises(ListError, match="not a Stanford40 image name"):
        splits.stanford40_items(tmp_path)


def test_missing_list_names_the_file(tmp_path):
    with pytest.raises(ListError, match=r"ImageSplits/train.txt: split list not found"):
        splits.stanford40_items(tmp_path)


def write_hmdb51(root, per_class_tags):
    """Split lists of the three folds (fold 1: `per_class_tags`, folds 2-3 reversed); every clip exists."""
    lists = root / "testTrainMulti_7030_splits"
    lists.mkdir(parents=True)
    for cls in HMDB51_CLASSES:
        (root / cls).mkdir()
        for i in range(len(per_class_tags)):
            (root / cls / f"clip_{cls}_{i}.avi").touch()
        for split in (1, 2, 3):
            tags = per_class_tags if split == 1 else list(reversed(per_class_tags))
            lines = [f"clip_{cls}_{i}.avi {tag} " for i, tag in enumerate(tags)]
            (lists / f"{cls}_test_split{split}.txt").write_text("\n".join(lines) + "\n")


def test_hmdb51_tags_and_val(tmp_path):
    tags = [1] * 20 + [2] * 9 + [0] * 3
    write_hmdb51(tmp_path, tags)
    items = splits.hmdb51_items(tmp_path, fold=1)
    assert len(items) == 12 * 32
    assert (items["tag"] == 0).sum() == 36  # tag 0 parsed, not dropped at parse time
    parts = splits.split_hmdb51(items, val_fraction=0.1, random_state=0, val_groups="clip")
    assert [len(parts[k]) for k in ("train", "val", "test")] == [216, 24, 108]
    assert (parts["val"]["label"].value_counts() == 2).all()  # stratified: 2 per class
    assert parts["test"]["path"].str.endswith(("_20.avi", "_21.avi", "_22.avi", "_23.avi", "_24.avi",
                                                "_25.avi", "_26.avi", "_27.avi", "_28.avi")).all()
    used = set(parts["train"]["path"]) | set(parts["val"]["path"]) | set(parts["test"]["path"])
    assert not any(p.endswith(("_29.avi", "_30.avi", "_31.avi")) for p in used)  # tag 0 unused
    assert not set(parts["train"]["path"]) & set(parts["val"]["path"])
    assert parts["train"]["path"].iloc[0].startswith("clap/")


def test_hmdb51_other_split_differs(tmp_path):
    write_hmdb51(tmp_path, [1] * 20 + [2] * 9 + [0] * 3)
    one = splits.hmdb51_items(tmp_path, 1).set_index("path")["tag"]
    two = splits.hmdb51_items(tmp_path, 2).set_index("path")["tag"]
    assert (one != two).any()


def test_hmdb51_malformed_line(tmp_path):
    write_hmdb51(tmp_path, [1, 2])
    path = tmp_path / "testTrainMulti_7030_splits" / "drink_test_split1.txt"
    path.write_text("good.avi 1\nbad.avi 7\n")
    with pytest.raises(ListError, match=r"drink_test_split1.txt:2: expected"):
        splits.hmdb51_items(tmp_path, 1)


def test_too_small_for_stratification_names_the_param(tmp_path):
    write_hmdb51(tmp_path, [1] * 5 + [2] * 3)
    items = splits.hmdb51_items(tmp_path, 1)
    with pytest.raises(ListError, match=r"split.val_fraction: 0.1 of 60 items gives 6 held out"):
        splits.split_hmdb51(items, val_fraction=0.1, random_state=0, val_groups="clip")


def test_subsets_are_the_params_subsets(stanford):
    root, _ = stanford
    parts = splits.split_stanford40(splits.stanford40_items(root), 0.1, 0.1, random_state=0, balance=False)
    assert tuple(parts) == SUBSETS
    assert all(list(part.columns) == ["path", "label", "class"] for part in parts.values())


def test_stratified_names_the_param_and_splits_by_label():
    frame = pd.DataFrame({"path": [f"p{i}" for i in range(40)], "label": [i % 4 for i in range(40)],
                          "class": ["c"] * 40})
    rest, out = splits.stratified(frame, 0.1, 0, "split.test_fraction")
    assert len(out) == 4 and sorted(out["label"]) == [0, 1, 2, 3]
    assert not set(rest["path"]) & set(out["path"])
    with pytest.raises(ListError, match=r"^split.test_fraction: 0.05 of 40 items gives 2 held out"):
        splits.stratified(frame, 0.05, 0, "split.test_fraction")
    # a class with one item: scikit-learn cannot stratify it (its ValueError was a traceback)
    lone = pd.concat([frame, pd.DataFrame({"path": ["p40"], "label": [4], "class": ["lone"]})], ignore_index=True)
    with pytest.raises(ListError, match=r"^split.val_fraction: a stratified split needs >= 2 items of every "
                                        r"class; lone has 1 here"):
        splits.stratified(lone, 0.2, 0, "split.val_fraction")


def test_missing_stanford40_image_names_list_and_line(stanford):
    root, _ = stanford
    train = (root / "ImageSplits" / "train.txt").read_text().splitlines()
    number = 7
    (root / "JPEGImages" / train[number - 1]).unlink()
    with pytest.raises(ListError) as err:
        splits.stanford40_items(root)
    message = str(err.value)
    assert message.startswith(f"{root / 'ImageSplits' / 'train.txt'}:{number}: JPEGImages/{train[number - 1]} "
                              f"does not exist under {root}")
    assert "(1 listed image(s) missing)" in message


def test_unknown_stanford40_class_line_is_named(tmp_path):
    (tmp_path / "ImageSplits").mkdir()
    (tmp_path / "ImageSplits" / "train.txt").write_text("applauding_001.jpg\n\nApplauding-2.jpg\n")
    (tmp_path / "ImageSplits" / "test.txt").write_text("")
    with pytest.raises(ListError, match=r"ImageSplits/train.txt:3: not a Stanford40 image name"):
        splits.stanford40_items(tmp_path)


def test_missing_stanford40_class_is_named(stanford):
    root, _ = stanford
    for name in ("train.txt", "test.txt"):
        path = root / "ImageSplits" / name
        path.write_text("".join(f"{line}\n" for line in path.read_text().splitlines()
                                if not line.startswith("smoking_")))
    with pytest.raises(ListError, match=r"ImageSplits: no images of class\(es\) smoking$"):
        splits.stanford40_items(root)


def test_missing_listed_hmdb51_video_names_the_list(tmp_path):
    tags = [1] * 20 + [2] * 9 + [0] * 3
    write_hmdb51(tmp_path, tags)
    # an unused clip (tag 0) may be missing: the fold does not use it
    (tmp_path / "drink" / "clip_drink_31.avi").unlink()
    assert len(splits.hmdb51_items(tmp_path, fold=1)) == 12 * 32
    # a train or test clip may not
    (tmp_path / "drink" / "clip_drink_25.avi").unlink()  # tagged 2 (test) in fold 1
    with pytest.raises(ListError) as err:
        splits.hmdb51_items(tmp_path, fold=1)
    assert str(err.value).startswith(
        f"{tmp_path / 'testTrainMulti_7030_splits' / 'drink_test_split1.txt'}:26: clip_drink_25.avi (tagged test) "
        f"does not exist in {tmp_path / 'drink'}")
    # in fold 2 (tags reversed) clip 31 is a train clip
    (tmp_path / "drink" / "clip_drink_25.avi").touch()
    with pytest.raises(ListError, match=r"drink_test_split2.txt:32: clip_drink_31.avi \(tagged train\) does not exist"):
        splits.hmdb51_items(tmp_path, fold=2)


def test_hmdb51_list_missing_names_the_file(tmp_path):
    write_hmdb51(tmp_path, [1, 2])
    (tmp_path / layout.HMDB51_LISTS / "wave_test_split3.txt").unlink()
    with pytest.raises(ListError, match=r"wave_test_split3.txt: split list not found"):
        splits.hmdb51_items(tmp_path, 3)


def test_split_hmdb51_needs_train_and_test(tmp_path):
    write_hmdb51(tmp_path, [1] * 10)
    with pytest.raises(ListError, match=r"HMDB51 split lists have no test \(tag 2\) videos"):
        splits.split_hmdb51(splits.hmdb51_items(tmp_path, 1), val_fraction=0.1, random_state=0, val_groups="source")


def hmdb51_named_items(train_per_class=20, test_per_class=8):
    """HMDB51-style items: train clips cut three at a time from sources Src<j> (a source title shared by every
    class, as a film is in HMDB51), test clips from their own sources."""
    rows = []
    for cls in HMDB51_CLASSES:
        label = HMDB51_CLASSES.index(cls)
        for i in range(train_per_class):
            rows.append((f"{cls}/Src{i // 3}_{cls}_f_cm_np1_fr_goo_{i % 3}.avi", label, cls, 1))
        for i in range(test_per_class):
            rows.append((f"{cls}/Test{i}_{cls}_f_cm_np1_fr_goo_0.avi", label, cls, 2))
    return pd.DataFrame(rows, columns=["path", "label", "class", "tag"])


# what split_hmdb51 made of hmdb51_named_items() before split.val_groups existed (commit bb41cc6)
SEED_PROCEDURE_VAL = [
    "clap/Src4_clap_f_cm_np1_fr_goo_0.avi", "clap/Src5_clap_f_cm_np1_fr_goo_0.avi",
    "climb/Src2_climb_f_cm_np1_fr_goo_0.avi", "climb/Src2_climb_f_cm_np1_fr_goo_1.avi",
    "drink/Src4_drink_f_cm_np1_fr_goo_2.avi", "drink/Src6_drink_f_cm_np1_fr_goo_1.avi",
    "jump/Src1_jump_f_cm_np1_fr_goo_1.avi", "jump/Src1_jump_f_cm_np1_fr_goo_2.avi",
    "pour/Src0_pour_f_cm_np1_fr_goo_0.avi", "pour/Src4_pour_f_cm_np1_fr_goo_2.avi",
    "ride_bike/Src1_ride_bike_f_cm_np1_fr_goo_0.avi", "ride_bike/Src5_ride_bike_f_cm_np1_fr_goo_0.avi",
    "ride_horse/Src4_ride_horse_f_cm_np1_fr_goo_1.avi", "ride_horse/Src5_ride_horse_f_cm_np1_fr_goo_1.avi",
    "run/Src1_run_f_cm_np1_fr_goo_0.avi", "run/Src5_run_f_cm_np1_fr_goo_2.avi",
    "shoot_bow/Src2_shoot_bow_f_cm_np1_fr_goo_2.avi", "shoot_bow/Src4_shoot_bow_f_cm_np1_fr_goo_1.avi",
    "smoke/Src0_smoke_f_cm_np1_fr_goo_0.avi", "smoke/Src4_smoke_f_cm_np1_fr_goo_2.avi",
    "throw/Src0_throw_f_cm_np1_fr_goo_1.avi", "throw/Src6_throw_f_cm_np1_fr_goo_1.avi",
    "wave/Src0_wave_f_cm_np1_fr_goo_1.avi", "wave/Src4_wave_f_cm_np1_fr_goo_0.avi"]
SEED_PROCEDURE_TRAIN_SHA256 = "f82a59172534a53ad283cb8b4b0570322aa9e2fd91b8ecfdded863c25bdd2e9a"


def test_val_groups_clip_is_the_seed_procedure_unchanged():
    parts = splits.split_hmdb51(hmdb51_named_items(), 0.1, 0, val_groups="clip")
    assert list(parts["val"]["path"]) == SEED_PROCEDURE_VAL
    train = "\n".join(parts["train"]["path"]).encode()
    assert hashlib.sha256(train).hexdigest() == SEED_PROCEDURE_TRAIN_SHA256
    # and it leaks: val clips whose source video also has clips in train
    assert splits.shared_sources(parts["train"], parts["val"])


def _sources(frame):
    return {layout.hmdb51_source_of(p.split("/")[1], c) for p, c in zip(frame["path"], frame["class"])}


def demo_like_items(seed=0):
    """12 classes x 22 train clips from 1-3 clips per source (the demo's sizes); the first source of each class
    shares its title with the neighbouring class (Film<j>: classes 2j and 2j + 1); 10 test clips per class."""
    rng = np.random.default_rng(seed)
    rows = []
    for label, cls in enumerate(HMDB51_CLASSES):
        i, source = 0, 0
        while i < 22:
            title = f"Film{label // 2}" if source == 0 else f"{cls.title()}Src{source}"
            for k in range(min(int(rng.integers(1, 4)), 22 - i)):
                rows.append((f"{cls}/{title}_{cls}_f_cm_np1_fr_goo_{k}.avi", label, cls, 1))
                i += 1
            source += 1
        rows += [(f"{cls}/T{j}_{cls}_f_cm_np1_fr_goo_0.avi", label, cls, 2) for j in range(10)]
    return pd.DataFrame(rows, columns=["path", "label", "class", "tag"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_val_groups_source_keeps_every_source_video_on_one_side(seed):
    items = demo_like_items(seed)
    parts = splits.split_hmdb51(items, 0.1, random_state=seed, val_groups="source")
    train, val = parts["train"], parts["val"]
    assert not _sources(train) & _sources(val)  # no source video in both
    assert not splits.shared_sources(train, val)
    assert set(train["path"]) | set(val["path"]) == set(items[items["tag"] == 1]["path"])
    assert not set(train["path"]) & set(val["path"])
    assert list(parts["test"]["path"]) == list(items[items["tag"] == 2]["path"])  # test untouched
    # about val_fraction, stratified as far as the groups allow: every class, 1-4 clips each (2.2 expected)
    assert 0.07 < len(val) / 264 < 0.14
    counts = val["label"].value_counts()
    assert len(counts) == 12 and counts.between(1, 4).all()
    # a source shared by two classes (a film) is one group: all its clips on one side
    for title in (f"Film{j}" for j in range(6)):
        sides = {name for name, part in (("train", train), ("val", val))
                 if part["path"].str.contains(f"/{title}_").any()}
        assert len(sides) == 1


def test_val_groups_source_is_deterministic_from_the_seed():
    items = demo_like_items(0)
    one = splits.split_hmdb51(items, 0.1, 0, val_groups="source")
    again = splits.split_hmdb51(items, 0.1, 0, val_groups="source")
    other = splits.split_hmdb51(items, 0.1, 1, val_groups="source")
    assert all(one[k].equals(again[k]) for k in SUBSETS)
    assert list(one["val"]["path"]) != list(other["val"]["path"])
    assert list(one["val"]["path"]) == sorted(one["val"]["path"], key=lambda p: (HMDB51_CLASSES.index(p.split("/")[0]), p))


def test_val_groups_source_with_too_few_sources_names_the_params():
    items = hmdb51_named_items()  # 7 sources (each shared by all 12 classes) cannot make 10 folds
    with pytest.raises(ListError, match=r"^split.val_groups: source: 7 source videos cannot make 10 folds"):
        splits.split_hmdb51(items, 0.1, 0, val_groups="source")


def test_val_groups_source_never_takes_every_train_clip_of_a_class():
    """A class whose train clips come from one source video keeps them all in train (no val clip of it),
    whatever the folds: the smallest synthetic sizes that check_params accepts split without error."""
    rows = []
    for label, cls in enumerate(HMDB51_CLASSES):
        sources = 1 if label % 3 == 0 else 3  # every third class: one source video only
        rows += [(f"{cls}/{cls.title()}S{j}_{cls}_f_cm_np1_fr_goo_{k}.avi", label, cls, 1)
                 for j in range(sources) for k in range(2)]
        rows.append((f"{cls}/T_{cls}_f_cm_np1_fr_goo_0.avi", label, cls, 2))
    items = pd.DataFrame(rows, columns=["path", "label", "class", "tag"])
    for seed in range(5):
        parts = splits.split_hmdb51(items, 0.5, random_state=seed, val_groups="source")
        train, val = parts["train"], parts["val"]
        assert set(train["class"]) == set(HMDB51_CLASSES)
        assert not set(val["label"]) & {label for label in range(12) if label % 3 == 0}
        assert len(val) > 0 and not splits.shared_sources(train, val)


# --- list encodings and paths that leave the raw root -------------------------------------------------

def test_lists_with_a_byte_order_mark_are_accepted(stanford, tmp_path):
    root, _ = stanford
    plain = splits.stanford40_items(root)
    for name in ("train.txt", "test.txt"):
        path = root / "ImageSplits" / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    pd.testing.assert_frame_equal(splits.stanford40_items(root), plain)
    hmdb = tmp_path / "hmdb"
    write_hmdb51(hmdb, [1] * 5 + [2] * 3)
    before = splits.hmdb51_items(hmdb, 1)
    for path in (hmdb / "testTrainMulti_7030_splits").iterdir():
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    pd.testing.assert_frame_equal(splits.hmdb51_items(hmdb, 1), before)


def test_a_list_that_is_not_utf8_names_file_and_line(stanford):
    root, _ = stanford
    path = root / "ImageSplits" / "test.txt"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes() + b"applauding_caf\xe9.jpg\n")
    line = path.read_bytes().count(b"\n")
    with pytest.raises(ListError) as err:
        splits.stanford40_items(root)
    assert str(err.value) == f"{path}:{line}: not UTF-8 text (byte 0xe9); save the list as UTF-8"


@pytest.mark.parametrize("entry", ["../../outside/applauding_001.jpg", "/etc/applauding_001.jpg",
                                   "JPEGImages/applauding_001.jpg", "..", "sub\\applauding_001.jpg"])
def test_a_stanford40_list_entry_with_a_directory_is_refused(stanford, entry):
    root, _ = stanford
    path = root / "ImageSplits" / "train.txt"
    path.write_text(entry + "\n" + path.read_text())
    with pytest.raises(ListError) as err:
        splits.stanford40_items(root)
    problem = "is not a file name" if entry == ".." else "must be a file name without a directory"
    assert str(err.value) == f"{path}:1: {entry!r} {problem} (a list names images of JPEGImages/ by file name)"


@pytest.mark.parametrize("entry", ["../../../etc/x.avi", "/tmp/x.avi", "clap/x.avi"])
def test_an_hmdb51_list_entry_with_a_directory_is_refused(tmp_path, entry):
    write_hmdb51(tmp_path, [1] * 5 + [2] * 3)
    path = tmp_path / "testTrainMulti_7030_splits" / "drink_test_split1.txt"
    path.write_text(path.read_text() + f"{entry} 1\n")
    with pytest.raises(ListError) as err:
        splits.hmdb51_items(tmp_path, 1)
    assert str(err.value) == (f"{path}:9: {entry!r} must be a file name without a directory (a list names clips of "
                              f"its class's directory by file name)")


# --- the exclusion list ------------------------------------------------------------------------------

def test_read_exclusions(tmp_path):
    path = tmp_path / "exclude.txt"
    path.write_bytes("\ufeff# damaged files\n\nstanford40/JPEGImages/applauding_001.jpg  # truncated\n"
                     "hmdb51/clap/a b.avi\n".encode())
    assert splits.read_exclusions(path) == {"stanford40": {"JPEGImages/applauding_001.jpg"},
                                            "hmdb51": {"clap/a b.avi"}}
    assert splits.read_exclusions(None) == {"stanford40": frozenset(), "hmdb51": frozenset()}
    with pytest.raises(ListError, match=rf"^{tmp_path / 'none.txt'}: exclusion list not found \(it may be empty"):
        splits.read_exclusions(tmp_path / "none.txt")


@pytest.mark.parametrize("entry, problem", [
    ("JPEGImages/applauding_001.jpg", "it must start with stanford40/ or hmdb51/"),
    ("stanford40", "it must start with stanford40/ or hmdb51/"),
    ("/data/raw/hmdb51/clap/a.avi", "an absolute path"),
    ("hmdb51/../../etc/passwd", "a '..', '.' or empty path component"),
])
def test_a_bad_exclusion_names_file_and_line(tmp_path, entry, problem):
    path = tmp_path / "exclude.txt"
    path.write_text(f"# comment\n{entry}\n")
    with pytest.raises(ListError) as err:
        splits.read_exclusions(path)
    assert str(err.value) == (f"{path}:2: {entry!r} is not a file under data/raw ({problem}): write paths like "
                              f"stanford40/JPEGImages/applauding_001.jpg or hmdb51/clap/<clip>.avi")


def test_excluded_images_are_in_no_subset_and_need_not_exist(stanford, caplog):
    root, counts = stanford
    gone, damaged = "JPEGImages/climbing_003.jpg", "JPEGImages/applauding_007.jpg"
    (root / gone).unlink()
    with pytest.raises(ListError, match="climbing_003.jpg does not exist"):
        splits.stanford40_items(root)
    items = splits.stanford40_items(root, {gone, damaged, "JPEGImages/not_listed_001.jpg"})
    assert len(items) == sum(counts[c] for c in STANFORD40_CLASSES) - 2
    assert not {gone, damaged} & set(items["path"])
    assert "1 excluded file(s) are not in its lists, e.g. stanford40/JPEGImages/not_listed_001.jpg" in caplog.text
    parts = splits.split_stanford40(items, 0.1, 0.1, 0, balance=True)
    assert not any({gone, damaged} & set(frame["path"]) for frame in parts.values())


def test_excluded_clips_are_in_no_subset_whatever_their_tag(tmp_path):
    write_hmdb51(tmp_path, [1] * 20 + [2] * 9 + [0] * 3)
    excluded = {"clap/clip_clap_0.avi", "drink/clip_drink_25.avi", "wave/clip_wave_30.avi"}
    (tmp_path / "clap/clip_clap_0.avi").unlink()  # a damaged file deleted: excluded, it need not exist
    items = splits.hmdb51_items(tmp_path, 1, excluded)
    assert len(items) == 12 * 32 - 3 and not excluded & set(items["path"])
    parts = splits.split_hmdb51(items, 0.1, 0, "clip")
    assert not any(excluded & set(frame["path"]) for frame in parts.values())


def test_the_seed_lists_leave_out_excluded_files_every_copy(tmp_path):
    for dataset, files in (("Stanford40", ["train_files_osamp.txt", "val_files_osamp.txt", "test_files.txt"]),):
        for name in files:
            for line in (splits.SEED_LISTS / dataset / name).read_text().split():
                (tmp_path / "JPEGImages").mkdir(exist_ok=True)
                (tmp_path / layout.stanford40_image(line)).touch()
    full = splits.seed_stanford40(tmp_path, balance=True)
    victim = full["train"]["path"].value_counts().index[0]  # an image the authors duplicated
    assert (full["train"]["path"] == victim).sum() > 1
    (tmp_path / victim).unlink()
    left = splits.seed_stanford40(tmp_path, balance=True, excluded={victim})
    assert all(victim not in set(frame["path"]) for frame in left.values())
    assert len(left["train"]) == len(full["train"]) - (full["train"]["path"] == victim).sum()
    assert len(left["test"]) + len(left["val"]) == len(full["test"]) + len(full["val"])
