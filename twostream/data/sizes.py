"""Size rules: how many items a stratified split holds out, how big the parts of the synthetic
dataset are, and whether the split stage can split them.

The generator (`twostream.data.synthetic`) draws class sizes and split tags by these rules;
`check_sizes` holds params.yaml to them before anything is generated, so a size that params
validation accepts never fails later in the split stage (stages/check_params.py runs it).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.errors import ParamsError
from twostream.params import Params, SplitParams

# Official-list membership: about half of each Stanford40 class is in train.txt; class sizes
# vary by these factors around images_per_class, as in the real dataset.
STANFORD40_TRAIN_SHARE = 0.5
STANFORD40_CLASS_FACTORS = (0.7, 1.3)
# HMDB51 split tags per class: 1/8 of the clips unused (tag 0), of the rest ~70% train, ~30% test.
HMDB51_UNUSED_SHARE = 1 / 8
HMDB51_TRAIN_SHARE = 0.7


def held_out(count: int, fraction: float) -> int:
    """How many of `count` items a split with `fraction` holds out (scikit-learn's rule: ceil)."""
    return math.ceil(fraction * count)


def minimum_items(classes: int, test_fraction: float | None, val_fraction: float) -> int:
    """The smallest number of items that `stratified` test (optional) and val splits accept:
    every held-out part and every remainder needs at least one item per class."""
    # val needs ceil(v * rest) >= classes and rest - ceil(v * rest) >= classes, so rest > (classes - 1) / v
    # and rest >= classes / (1 - v); the test split then needs n >= rest / (1 - t): start just below
    rest = max(classes / (1 - val_fraction), math.floor((classes - 1) / val_fraction) + 1)
    start = max(classes, int(rest / (1 - (test_fraction or 0.0))) - 1)
    for n in range(start, start + 10_000_000):
        rest = n
        if test_fraction is not None:
            test = held_out(n, test_fraction)
            if test < classes or n - test < classes:
                continue
            rest = n - test
        val = held_out(rest, val_fraction)
        if val >= classes and rest - val >= classes:
            return n
    raise ParamsError(f"split: no dataset size up to {start + 10_000_000:,} can be split with test_fraction "
                      f"{test_fraction} and val_fraction {val_fraction}; use smaller fractions")


def rest_of_class(size: int, count: int, fraction: float) -> int:
    """The fewest items a class of `size` (of `count` items) keeps after a stratified split holds out
    `fraction`: scikit-learn gives each class its share of the kept items rounded down or up (which
    one depends on the random state), so at least the share rounded down. A second stratified
    split of what is kept needs >= 2 items of every class."""
    return size * (count - held_out(count, fraction)) // count


def stanford40_class_sizes(images_per_class: int, rng: np.random.Generator) -> list[int]:
    """Images per class: images_per_class times factors spread over STANFORD40_CLASS_FACTORS."""
    factors = rng.permutation(np.linspace(*STANFORD40_CLASS_FACTORS, len(STANFORD40_CLASSES)))
    return [max(2, int(round(images_per_class * f))) for f in factors]


def hmdb51_tag_counts(count: int) -> dict[int, int]:
    """How many of a class's `count` clips get tag 0 (unused), 1 (train) and 2 (test) in each fold.

    The numbers depend only on `count`, so every class has the same number of train and test
    clips (balanced, as in HMDB51)."""
    if count < 2:
        raise ValueError(f"a class needs >= 2 clips for a train and a test clip, got {count}")
    used = count - int(count * HMDB51_UNUSED_SHARE)
    n_train = min(max(int(round(HMDB51_TRAIN_SHARE * used)), 1), used - 1)
    return {0: count - used, 1: n_train, 2: used - n_train}


def _images_ok(per_class: int, classes: int, need: int, test_fraction: float) -> bool:
    """Enough images in all, and the smallest class keeps >= 2 after the test split (for the val split)."""
    sizes = [max(2, int(round(per_class * f))) for f in np.linspace(*STANFORD40_CLASS_FACTORS, classes)]
    total = sum(sizes)
    return total >= need and rest_of_class(min(sizes), total, test_fraction) >= 2


def _videos_ok(per_class: int, classes: int, need_train: int) -> bool:
    if per_class < 2:
        return False
    counts = hmdb51_tag_counts(per_class)
    return counts[1] * classes >= need_train and counts[1] >= 2


# The largest synthetic class size searched for a minimum; split fractions that need more are refused.
LARGEST_CLASS = 10_000_000


def _smallest(first: int, enough: Callable[[int], bool]) -> int | None:
    """The smallest value >= `first` that is `enough`: every value up to 100 * first + 1000, then (the
    rules are monotonic at large sizes) a doubling and bisection search up to LARGEST_CLASS; None if none is."""
    near = 100 * first + 1000
    found = next((v for v in range(first, near) if enough(v)), None)
    if found is not None:
        return found
    low, high = near - 1, near  # low is not enough
    while not enough(high):
        if high >= LARGEST_CLASS:
            return None
        low, high = high, min(2 * high, LARGEST_CLASS)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def _needs(smallest: int | None, fractions: str) -> str:
    if smallest is None:
        return (f"no size up to {LARGEST_CLASS:,} per class suffices: {fractions} hold out too much; "
                f"use a smaller fraction")
    return f"needs >= {smallest}"


def smallest_sizes(split: SplitParams) -> dict[str, int]:
    """The smallest `data.synthetic` images_per_class and videos_per_class that the split stage can
    split with `split`'s fractions (the full-setting dry run uses them)."""
    classes = len(HMDB51_CLASSES)
    need = minimum_items(classes, split.test_fraction, split.val_fraction)
    need_train = minimum_items(classes, None, split.val_fraction)
    sizes = {"images_per_class": _smallest(1, lambda v: _images_ok(v, classes, need, split.test_fraction)),
             "videos_per_class": _smallest(2, lambda v: _videos_ok(v, classes, need_train))}
    for name, size in sizes.items():
        if size is None:
            raise ParamsError(f"split: no data.synthetic.{name} up to {LARGEST_CLASS:,} can be split with "
                              f"test_fraction {split.test_fraction} and val_fraction {split.val_fraction}; use "
                              f"smaller fractions")
    return sizes


def check_sizes(params: Params) -> None:
    """The synthetic set must be big enough for the stratified splits the split stage makes;
    a ParamsError names the key and the real minimum."""
    if params.data.source != "synthetic" or params.split.lists != "generated":
        return
    synthetic, split, classes = params.data.synthetic, params.split, len(HMDB51_CLASSES)
    key = "data.synthetic"

    # Stanford40: all images (class sizes as stanford40_class_sizes draws them), test_fraction of
    # them, then val_fraction of the rest, each stratified.
    need = minimum_items(classes, split.test_fraction, split.val_fraction)

    def images_ok(per_class: int) -> bool:
        return _images_ok(per_class, classes, need, split.test_fraction)

    if not images_ok(synthetic.images_per_class):
        needs = _needs(_smallest(synthetic.images_per_class, images_ok), "split.test_fraction and val_fraction")
        raise ParamsError(f"{key}.images_per_class: {synthetic.images_per_class} is too few for stratified "
                          f"test and val subsets of {classes} classes (split.test_fraction {split.test_fraction}, "
                          f"split.val_fraction {split.val_fraction}): {needs}")
    # HMDB51: the clips tagged train, val_fraction of them stratified.
    need_train = minimum_items(classes, None, split.val_fraction)

    def videos_ok(per_class: int) -> bool:
        return _videos_ok(per_class, classes, need_train)

    if not videos_ok(synthetic.videos_per_class):
        raise ParamsError(f"{key}.videos_per_class: {synthetic.videos_per_class} clips per class leave too few "
                          f"training clips for a stratified val subset of {classes} classes (split.val_fraction "
                          f"{split.val_fraction}): "
                          f"{_needs(_smallest(max(2, synthetic.videos_per_class), videos_ok), 'split.val_fraction')}")
