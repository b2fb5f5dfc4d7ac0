"""Size rules: check_sizes holds params.yaml to what the split stage can really split."""
import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.data import splits
from twostream.data.sizes import (STANFORD40_CLASS_FACTORS, check_sizes, held_out, hmdb51_tag_counts,
                                  minimum_items, stanford40_class_sizes)
from twostream.errors import ListError, ParamsError
from twostream.params import load_params


@pytest.fixture(scope="module")
def params():
    return load_params("params.yaml")


def with_sizes(params, test_fraction=None, val_fraction=None, **synthetic):
    split = dataclasses.replace(params.split, **{k: v for k, v in (("test_fraction", test_fraction),
                                                                   ("val_fraction", val_fraction)) if v is not None})
    data = dataclasses.replace(params.data, synthetic=dataclasses.replace(params.data.synthetic, **synthetic))
    return dataclasses.replace(params, data=data, split=split)


def named_minimum(params, key, **synthetic) -> int:
    with pytest.raises(ParamsError, match=rf"^data\.synthetic\.{key}: ") as err:
        check_sizes(with_sizes(params, **synthetic))
    return int(re.search(r"needs >= (\d+)$", str(err.value)).group(1))


def stanford40_items(per_class: int, seed: int) -> pd.DataFrame:
    """Items with the generator's class sizes (no images rendered: the split only needs rows)."""
    sizes = stanford40_class_sizes(per_class, np.random.default_rng(seed))
    rows = [(f"JPEGImages/{c}_{k:03d}.jpg", label, c)
            for label, (c, n) in enumerate(zip(STANFORD40_CLASSES, sizes)) for k in range(1, n + 1)]
    return pd.DataFrame(rows, columns=["path", "label", "class"])


def hmdb51_items(per_class: int) -> pd.DataFrame:
    """Items with the generator's split tags of one fold."""
    counts = hmdb51_tag_counts(per_class)
    rows = [(f"{c}/clip_{tag}_{k}.avi", label, c, tag) for label, c in enumerate(HMDB51_CLASSES)
            for tag, n in counts.items() for k in range(n)]
    return pd.DataFrame(rows, columns=["path", "label", "class", "tag"])


def test_committed_params_have_big_enough_sizes(params):
    check_sizes(params)  # no error


def test_held_out_and_minimum_items():
    assert held_out(1260, 0.1) == 126 and held_out(1134, 0.1) == 114 and held_out(10, 0.25) == 3
    need = minimum_items(12, 0.1, 0.1)
    assert need == 124
    for n, ok in ((need, True), (need - 1, False)):
        test = held_out(n, 0.1)
        val = held_out(n - test, 0.1)
        assert (test >= 12 and val >= 12 and n - test - val >= 12) is ok
    assert minimum_items(12, None, 0.1) == 111  # val only: ceil(0.1 * 111) = 12


@pytest.mark.parametrize("fractions", [(0.1, 0.1), (0.2, 0.15), (0.5, 0.5), (0.3, 0.4)])
def test_images_per_class_minimum_is_accepted_one_less_rejected(params, fractions):
    test_fraction, val_fraction = fractions
    minimum = named_minimum(params, "images_per_class", images_per_class=1,
                            test_fraction=test_fraction, val_fraction=val_fraction)
    assert minimum > 1
    check_sizes(with_sizes(params, test_fraction, val_fraction, images_per_class=minimum))
    with pytest.raises(ParamsError, match=rf"images_per_class: {minimum - 1} is too few .* needs >= {minimum}$"):
        check_sizes(with_sizes(params, test_fraction, val_fraction, images_per_class=minimum - 1))
    # what check_sizes accepts, the split stage can split, whatever the class-size draw
    for seed in range(5):
        parts = splits.split_stanford40(stanford40_items(minimum, seed), test_fraction, val_fraction, 0, True)
        assert all(part["label"].nunique() == 12 for part in parts.values())


def test_images_per_class_one_less_than_the_minimum_cannot_be_split(params):
    minimum = named_minimum(params, "images_per_class", images_per_class=1)
    with pytest.raises(ListError):
        splits.split_stanford40(stanford40_items(minimum - 1, 0), 0.1, 0.1, 0, True)


@pytest.mark.parametrize("val_fraction", [0.1, 0.25])
def test_videos_per_class_minimum_is_accepted_one_less_rejected(params, val_fraction):
    minimum = named_minimum(params, "videos_per_class", videos_per_class=2, val_fraction=val_fraction)
    check_sizes(with_sizes(params, val_fraction=val_fraction, videos_per_class=minimum))
    with pytest.raises(ParamsError, match=rf"videos_per_class: {minimum - 1} clips per class .* needs >= {minimum}$"):
        check_sizes(with_sizes(params, val_fraction=val_fraction, videos_per_class=minimum - 1))
    # the minimum splits; one less really does not
    parts = splits.split_hmdb51(hmdb51_items(minimum), val_fraction, random_state=0, val_groups="clip")
    assert all(part["label"].nunique() == 12 for part in parts.values())
    with pytest.raises(ListError, match="split.val_fraction"):
        splits.split_hmdb51(hmdb51_items(minimum - 1), val_fraction, random_state=0, val_groups="clip")


def test_one_video_per_class_is_rejected(params):
    assert named_minimum(params, "videos_per_class", videos_per_class=1) == \
        named_minimum(params, "videos_per_class", videos_per_class=2)


def test_sizes_are_not_checked_for_real_data_or_seed_lists(params):
    tiny = with_sizes(params, images_per_class=1, videos_per_class=1)
    check_sizes(dataclasses.replace(tiny, data=dataclasses.replace(tiny.data, source="real")))
    check_sizes(dataclasses.replace(tiny, split=dataclasses.replace(tiny.split, lists="seed")))


def test_hmdb51_tag_counts():
    assert hmdb51_tag_counts(24) == {0: 3, 1: 15, 2: 6}
    assert hmdb51_tag_counts(2) == {0: 0, 1: 1, 2: 1}
    for count in range(2, 60):
        counts = hmdb51_tag_counts(count)
        assert sum(counts.values()) == count and counts[1] >= 1 and counts[2] >= 1
    with pytest.raises(ValueError, match=">= 2 clips"):
        hmdb51_tag_counts(1)


def test_stanford40_class_sizes():
    sizes = stanford40_class_sizes(80, np.random.default_rng(0))
    assert len(sizes) == 12 and len(set(sizes)) > 3
    assert min(sizes) == round(80 * STANFORD40_CLASS_FACTORS[0])
    assert max(sizes) == round(80 * STANFORD40_CLASS_FACTORS[1])
    assert sorted(stanford40_class_sizes(80, np.random.default_rng(1))) == sorted(sizes)  # only the order is drawn


def test_minimum_items_agrees_with_a_plain_search():
    def plain(classes, test, val):
        for n in range(classes, 10**6):
            rest = n
            if test is not None:
                out = held_out(n, test)
                if out < classes or n - out < classes:
                    continue
                rest = n - out
            if held_out(rest, val) >= classes and rest - held_out(rest, val) >= classes:
                return n

    for test in (None, 0.05, 0.1, 0.5, 0.9, 0.97):
        for val in (0.05, 0.1, 0.5, 0.95):
            assert minimum_items(12, test, val) == plain(12, test, val), (test, val)


def test_a_test_fraction_near_1_names_the_keys_and_the_real_minimum(params):
    """It needs 92,500 images per class (a plain search over the first 9,080 sizes used to end in StopIteration)."""
    with pytest.raises(ParamsError) as err:
        check_sizes(with_sizes(params, test_fraction=0.9999))
    assert str(err.value) == ("data.synthetic.images_per_class: 80 is too few for stratified test and val subsets of "
                              "12 classes (split.test_fraction 0.9999, split.val_fraction 0.1): needs >= 92500")
    assert check_sizes(with_sizes(params, test_fraction=0.9999, images_per_class=92500)) is None
    with pytest.raises(ParamsError, match=r"^data\.synthetic\.images_per_class: .*needs >= 92500$"):
        check_sizes(with_sizes(params, test_fraction=0.9999, images_per_class=92499))


@pytest.mark.parametrize("fraction", [0.99999999, 1 - 1e-12])
def test_a_test_fraction_no_size_can_split_names_the_fractions(params, fraction):
    with pytest.raises(ParamsError) as err:
        check_sizes(with_sizes(params, test_fraction=fraction))
    assert str(err.value).endswith("use a smaller fraction") or str(err.value).endswith("use smaller fractions")
    assert "split.test_fraction" in str(err.value) or "test_fraction" in str(err.value)
