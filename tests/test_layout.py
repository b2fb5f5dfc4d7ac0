"""The raw-layout contract: directory names, file-name patterns and their parsers."""
from pathlib import Path

import pytest

from twostream.classes import STANFORD40_CLASSES
from twostream.data import layout
from twostream.errors import ListError


@pytest.mark.parametrize("file_name, cls", [
    ("riding_a_bike_007.jpg", "riding_a_bike"),
    ("applauding_001.jpg", "applauding"),
    ("JPEGImages/throwing_frisby_120.jpg", "throwing_frisby"),  # a path: its file name counts
    ("fixing_a_car_040.jpg", "fixing_a_car"),  # one of the 28 other classes: parsed, filtered later
    ("watching_TV_017.jpg", "watching_TV"),  # the real lists spell this one in capitals
])
def test_stanford40_class_of(file_name, cls):
    assert layout.stanford40_class_of(file_name) == cls


@pytest.mark.parametrize("file_name", ["applauding.jpg", "applauding_001.png", "applauding-001.jpg",
                                       "applauding_x01.jpg", "applauding_001.jpg.bak", ""])
def test_stanford40_class_of_rejects_other_names(file_name):
    with pytest.raises(ListError, match="not a Stanford40 image name"):
        layout.stanford40_class_of(file_name)


@pytest.mark.parametrize("file_name, cls", [("Applauding_001.jpg", "Applauding"), ("applaudng_001.jpg", "applaudng"),
                                            ("watching_tv_001.jpg", "watching_tv"), ("dancing_003.jpg", "dancing")])
def test_stanford40_class_of_rejects_unknown_classes(file_name, cls):
    with pytest.raises(ListError, match=rf"^unknown class '{cls}' in '{file_name}' \(not one of the 40 Stanford 40"):
        layout.stanford40_class_of(file_name)


def test_the_12_classes_are_stanford40_actions():
    assert len(layout.STANFORD40_ACTIONS) == 40 and set(STANFORD40_CLASSES) <= layout.STANFORD40_ACTIONS


def test_every_class_round_trips_through_its_file_name():
    for cls in STANFORD40_CLASSES:
        assert layout.stanford40_class_of(layout.stanford40_image(f"{cls}_012.jpg")) == cls


def test_paths():
    root = Path("/data/raw/hmdb51")
    assert layout.hmdb51_list(root, "drink", 2) == root / "testTrainMulti_7030_splits" / "drink_test_split2.txt"
    assert layout.hmdb51_video("drink", "a.avi") == "drink/a.avi"
    assert layout.stanford40_list(Path("/s"), "train.txt") == Path("/s/ImageSplits/train.txt")
    assert layout.stanford40_image("running_003.jpg") == "JPEGImages/running_003.jpg"


@pytest.mark.parametrize("file_name, cls, source", [
    ("Amber_River_drink_u_nm_np1_fr_goo_1.avi", "drink", "Amber_River"),
    ("April_09_brush_hair_u_nm_np1_ba_goo_0.avi", "brush_hair", "April_09"),  # a class with "_"
    ("Golden_ride_bike_f_cm_np1_le_med_2.avi", "ride_bike", "Golden"),
    ("Ride_bike_now_ride_bike_f_cm_np1_le_med_0.avi", "ride_bike", "Ride_bike_now"),  # class words in the title
    ("hmdb51/shoot_bow/Robin_Hood_shoot_bow_f_nm_np1_ri_bad_1.avi", "shoot_bow", "Robin_Hood"),
    ("Clip_drink_3.avi", "drink", "Clip"),  # too few attribute fields: the part before _<class>_
    ("weird.avi", "drink", "weird"),  # no class in it: its own source
])
def test_hmdb51_source_of(file_name, cls, source):
    assert layout.hmdb51_source_of(file_name, cls) == source


def test_clips_of_one_source_share_it_and_others_do_not():
    clips = [f"Summer_Park_clap_u_cm_np1_fr_goo_{k}.avi" for k in range(3)]
    assert {layout.hmdb51_source_of(c, "clap") for c in clips} == {"Summer_Park"}
    assert layout.hmdb51_source_of("Summer_clap_u_cm_np1_fr_goo_0.avi", "clap") == "Summer"


def test_parse_hmdb51_list(tmp_path):
    path = tmp_path / "clap_test_split1.txt"
    lines = ["a_clap_u_cm_np1_fr_goo_0.avi 1 ", "", "b.avi 2", "c.avi 0 "]
    assert layout.parse_hmdb51_list(path, lines) == [(1, "a_clap_u_cm_np1_fr_goo_0.avi", 1), (3, "b.avi", 2),
                                                     (4, "c.avi", 0)]


@pytest.mark.parametrize("bad", ["a.avi 3", "a.avi", "a.mp4 1", "a.avi 1 extra", "a.avi one"])
def test_parse_hmdb51_list_names_file_and_line(tmp_path, bad):
    path = tmp_path / "clap_test_split1.txt"
    with pytest.raises(ListError, match=rf"^{path}:3: expected '<video>.avi <0\|1\|2>', got '{bad}'$"):
        layout.parse_hmdb51_list(path, ["a.avi 1", "", bad])


def test_layout_names():
    assert layout.HMDB51_FOLDS == (1, 2, 3)
    assert layout.HMDB51_TAGS == {0: "unused", 1: "train", 2: "test"}
    assert layout.STANFORD40_LIST_FILES == ("train.txt", "test.txt")
