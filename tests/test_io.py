import os
import stat

import numpy as np
import pytest

from twostream.io import atomic_dir, atomic_path, load_array, read_csv, save_array, write_json


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_writes_replace_and_follow_the_umask(tmp_path):
    write_json(tmp_path / "m.json", {"a": 1})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 1\n}\n'
    mode = stat.S_IMODE(os.stat(tmp_path / "m.json").st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask
    save_array(tmp_path / "a.npy", np.arange(6).reshape(2, 3))
    assert load_array(tmp_path / "a.npy").tolist() == [[0, 1, 2], [3, 4, 5]]


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "raw"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "b.txt").write_text("2")
            raise KeyboardInterrupt
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    with atomic_dir(target) as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_read_csv_checks_columns(tmp_path):
    (tmp_path / "m.csv").write_text("path,label\na,0\n")
    with pytest.raises(ValueError, match=r"m.csv: manifest lacks column\(s\) class"):
        read_csv(tmp_path / "m.csv", ("path", "label", "class"))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_csv(tmp_path / "none.csv", ("path",))
