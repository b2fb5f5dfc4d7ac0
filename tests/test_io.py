import os
import stat

import numpy as np
import pytest

from twostream.errors import InputError, MissingInputError
from twostream.io import (atomic_dir, atomic_path, load_array, open_array, read_csv, remove_leftovers,
                          write_json)


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
    # save_array is gone; arrays are written through open_array
    with open_array(tmp_path / "a.npy", (2, 3), np.int64) as array:
        array[:] = np.arange(6).reshape(2, 3)
    assert load_array(tmp_path / "a.npy").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert stat.S_IMODE(os.stat(tmp_path / "a.npy").st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "m.json"]


def test_open_array_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with open_array(tmp_path / "a.npy", (2, 3)) as array:
            array[0] = 1
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


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
    with pytest.raises(InputError, match=r"m.csv: lacks column\(s\) class"):
        read_csv(tmp_path / "m.csv", ("path", "label", "class"))
    with pytest.raises(MissingInputError, match="none.csv: not found"):
        read_csv(tmp_path / "none.csv", ("path",))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty.csv: not a readable CSV"):
        read_csv(tmp_path / "empty.csv", ("path",))


def test_missing_array_is_a_missing_input(tmp_path):
    with pytest.raises(MissingInputError, match=r"none.npy: array not found; run `dvc repro`"):
        load_array(tmp_path / "none.npy")
    # still a FileNotFoundError for callers that catch the builtin
    assert issubclass(MissingInputError, FileNotFoundError)


def test_leftovers_of_a_killed_run_go_with_the_next_write(tmp_path):
    """A SIGKILLed run leaves `.<name>.<8 random>.tmp` files or dirs; the next atomic write of
    the same output removes them, and nothing that merely looks similar."""
    (tmp_path / ".x.npy.abcd1234.tmp").write_bytes(b"half an array")
    (tmp_path / ".d.abcd1234.tmp").mkdir()
    (tmp_path / ".d.abcd1234.tmp" / "part.txt").write_text("half")
    (tmp_path / ".d.old").mkdir()
    (tmp_path / ".other.tmp").write_text("not ours")
    (tmp_path / ".x.npy.toolong123.tmp").write_text("not tempfile's pattern")
    (tmp_path / ".y.npy.abcd1234.tmp").write_text("another output's leftover")

    with open_array(tmp_path / "x.npy", (1,)) as array:
        array[0] = 7
    assert not (tmp_path / ".x.npy.abcd1234.tmp").exists()
    assert (tmp_path / ".d.abcd1234.tmp").is_dir()  # not x.npy's
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "whole.txt").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other.tmp", ".x.npy.toolong123.tmp", ".y.npy.abcd1234.tmp", "d", "x.npy"]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["whole.txt"]
    assert load_array(tmp_path / "x.npy").tolist() == [7]


def test_remove_leftovers_reports_what_went(tmp_path):
    (tmp_path / ".m.json.a_b_c_d_.tmp").write_text("")
    (tmp_path / ".m.json.old").write_text("")
    (tmp_path / "m.json").write_text("{}")
    removed = remove_leftovers(tmp_path / "m.json")
    assert sorted(p.name for p in removed) == [".m.json.a_b_c_d_.tmp", ".m.json.old"]
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert remove_leftovers(tmp_path / "missing_dir" / "m.json") == []
