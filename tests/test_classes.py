"""The class table: 12 (Stanford40, HMDB51) pairs, one label each."""
import pytest

from twostream import classes
from twostream.classes import CLASSES, HMDB51_CLASSES, NUM_CLASSES, STANFORD40_CLASSES, class_problem, label_of


def test_tables():
    assert NUM_CLASSES == 12
    assert CLASSES == {"stanford40": STANFORD40_CLASSES, "hmdb51": HMDB51_CLASSES}
    assert classes.STANFORD40_TO_HMDB51["riding_a_bike"] == "ride_bike"
    assert label_of("riding_a_bike") == label_of("ride_bike") == 5
    with pytest.raises(KeyError, match="unknown class 'swim'"):
        label_of("swim")


@pytest.mark.parametrize("dataset, name, label, problem", [
    ("hmdb51", "wave", 11, None),
    ("stanford40", "applauding", 0, None),
    ("stanford40", "clap", 0, "class 'clap' is not one of the 12 stanford40 classes"),  # the other dataset
    ("hmdb51", "swim", 0, "class 'swim' is not one of the 12 hmdb51 classes"),
    ("hmdb51", "wave", 10, "label 10 contradicts class wave (label 11)"),
    ("hmdb51", "wave", 12, "label 12 is not an integer in 0..11 (class wave is 11)"),
    ("hmdb51", "wave", -1, "label -1 is not an integer in 0..11"),
    ("hmdb51", "wave", 11.0, "label 11.0 is not an integer in 0..11"),
    ("hmdb51", "wave", True, "label True is not an integer in 0..11"),
])
def test_class_problem(dataset, name, label, problem):
    got = class_problem(dataset, name, label)
    assert got == problem if problem is None else got.startswith(problem)
