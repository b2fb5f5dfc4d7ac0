"""Manifests: every reader checks each row against the class table and names file:line."""
import pandas as pd
import pytest

from twostream.data.manifests import COLUMNS, check_manifest, manifest_name, read_manifest, write_manifest
from twostream.errors import InputError, ListError, MissingInputError

HEADER = "path,label,class\n"
GOOD = "JPEGImages/applauding_001.jpg,0,applauding\n"


def write(tmp_path, *rows):
    path = tmp_path / "stanford40_train.csv"
    path.write_text(HEADER + GOOD + "".join(rows))
    return path


def test_names_and_columns():
    assert COLUMNS == ("path", "label", "class")
    assert manifest_name("stanford40", "train") == "stanford40_train.csv"
    assert manifest_name("hmdb51", "test") == "hmdb51_test.csv"


def test_round_trip(tmp_path):
    frame = pd.DataFrame({"path": ["clap/a.avi", "wave/b.avi"], "label": [0, 11], "class": ["clap", "wave"],
                          "n_frames": [40, 50]})
    write_manifest(frame, tmp_path / "hmdb51_val.csv")
    back = read_manifest(tmp_path / "hmdb51_val.csv", "hmdb51", (*COLUMNS, "n_frames"))
    assert back["label"].tolist() == [0, 11] and back["n_frames"].tolist() == [40, 50]
    assert pd.api.types.is_integer_dtype(back["label"])


def test_whole_float_labels_become_integers(tmp_path):
    path = write(tmp_path, "JPEGImages/climbing_001.jpg,1.0,climbing\n")
    frame = read_manifest(path, "stanford40")
    assert frame["label"].tolist() == [0, 1] and pd.api.types.is_integer_dtype(frame["label"])


def test_contradicting_label_names_file_and_line(tmp_path):
    path = write(tmp_path, "JPEGImages/climbing_001.jpg,1,climbing\n", "JPEGImages/drinking_001.jpg,5,drinking\n")
    with pytest.raises(ListError) as err:
        read_manifest(path, "stanford40")
    assert str(err.value) == (f"{path}:4: JPEGImages/drinking_001.jpg: label 5 contradicts class drinking "
                              f"(label 2); re-run the split stage")


@pytest.mark.parametrize("row, problem", [
    ("clap/a.avi,0,clap\n", "class 'clap' is not one of the 12 stanford40 classes"),  # the other dataset's name
    ("JPEGImages/fixing_a_car_001.jpg,3,fixing_a_car\n", "class 'fixing_a_car' is not one of the 12"),
])
def test_unknown_class_names_file_and_line(tmp_path, row, problem):
    path = write(tmp_path, row)
    with pytest.raises(ListError, match=rf"^{path}:3: [^:]+: {problem}"):
        read_manifest(path, "stanford40")


@pytest.mark.parametrize("label", ["x", "1.5", "", "True"])
def test_non_integer_label_names_file_and_line(tmp_path, label):
    path = write(tmp_path, f"JPEGImages/climbing_001.jpg,{label},climbing\n")
    with pytest.raises(ListError, match=rf"^{path}:3: label .* is not an integer; re-run the split stage$"):
        read_manifest(path, "stanford40")


def test_label_out_of_range_names_file_and_line(tmp_path):
    path = write(tmp_path, "JPEGImages/climbing_001.jpg,12,climbing\n")
    with pytest.raises(ListError, match=rf"^{path}:3: .*label 12 is not an integer in 0..11 \(class climbing is 1\)"):
        read_manifest(path, "stanford40")


def test_empty_path_names_file_and_line(tmp_path):
    path = write(tmp_path, ",1,climbing\n")
    with pytest.raises(ListError, match=rf"^{path}:3: empty path"):
        read_manifest(path, "stanford40")


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "stanford40_val.csv"
    path.write_text("path,label\nJPEGImages/applauding_001.jpg,0\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) class"):
        read_manifest(path, "stanford40")
    with pytest.raises(MissingInputError, match="none.csv: not found"):
        read_manifest(tmp_path / "none.csv", "stanford40")


def test_check_manifest_names_the_source():
    frame = pd.DataFrame({"path": ["a", "b"], "label": [0, 0], "class": ["clap", "wave"]})
    with pytest.raises(ListError, match=r"^lists/x.txt:3: b: label 0 contradicts class wave \(label 11\)"):
        check_manifest(frame, "hmdb51", "lists/x.txt")
    good = frame.assign(label=[0, 11])
    assert check_manifest(good, "hmdb51", "lists/x.txt") is good


@pytest.mark.parametrize("entry, problem", [
    ("/etc/applauding_001.jpg", "an absolute path"),
    ("../stanford40/JPEGImages/applauding_001.jpg", "a '..', '.' or empty path component"),
    ("JPEGImages/../../hmdb51/clap/a.avi", "a '..', '.' or empty path component"),
    ("JPEGImages//applauding_001.jpg", "a '..', '.' or empty path component"),
    ("~/applauding_001.jpg", "an absolute path"),
    ("C:/data/applauding_001.jpg", "an absolute path"),
    ("JPEGImages\\..\\applauding_001.jpg", "a backslash or NUL in the path"),
])
def test_a_path_leaving_the_root_names_file_and_line(tmp_path, entry, problem):
    path = write(tmp_path, f'"{entry}",0,applauding\n')
    with pytest.raises(ListError) as err:
        read_manifest(path, "stanford40")
    assert str(err.value) == (f"{path}:3: {entry!r} leaves the dataset's root ({problem}): paths must be relative "
                              f"and stay inside it; re-run the split stage")


def test_unusual_but_inside_names_are_accepted(tmp_path):
    path = write(tmp_path, '"JPEGImages/applauding_002 (copy)..jpg",0,applauding\n',
                 '"JPEGImages/.hidden/applauding_003.jpg",0,applauding\n')
    assert len(read_manifest(path, "stanford40")) == 3
