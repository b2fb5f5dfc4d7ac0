import os
import pickle
import re
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch

from twostream.errors import DiskFullError, InputError, MissingInputError
from twostream.io import (atomic_dir, atomic_path, load_array, open_array, read_csv, remove_leftovers, write_json,
                          writing)


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


# --------------------------------------------------------------------------- a full disk

FILE_SIZE_LIMIT = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as twostream.cli does: over the limit, write() fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
import numpy as np
from twostream import io
from twostream.errors import TwostreamError
out = Path(sys.argv[1])
try:
    {call}
except TwostreamError as exc:
    print(exc)
"""


@pytest.mark.parametrize("call, name", [
    ("io.write_bytes(out / 'metrics.json', b'x' * 100_000)", "metrics.json"),
    ("with io.open_array(out / 'images.npy', (100, 32, 32, 3)) as a: a[:] = 1", "images.npy"),
    ("with io.atomic_dir(out / 'images') as tmp:\n"
     "        with io.open_array(tmp / 'train.npy', (100, 32, 32, 3)) as a: a[:] = 1", "images/train.npy"),
])
def test_a_write_over_the_file_size_limit_is_one_line_and_keeps_the_old_output(tmp_path, call, name):
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    for old in ("metrics.json", "images.npy", "images/train.npy"):
        (out / old).write_bytes(b"previous")
    code = FILE_SIZE_LIMIT.replace("{call}", call)
    proc = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout == (f"{out / name}: cannot write it: the file would exceed the largest file allowed (the "
                           f"process's file size limit, `ulimit -f`, or the filesystem's); free space there (or "
                           f"raise the limit) and run again (the previous output is left as it was)\n")
    for old in ("metrics.json", "images.npy", "images/train.npy"):
        assert (out / old).read_bytes() == b"previous"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "images", "images.npy", "images/train.npy", "metrics.json"]  # no temporary left


def test_no_space_left_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(DiskFullError) as info:
        with writing(tmp_path / "model.pt"), open("/dev/full", "wb") as fh:  # /dev/full: every write is ENOSPC
            fh.write(b"x" * 10)
            fh.flush()
    message = str(info.value)
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'model.pt'))}: cannot write it: no space left on the device "
                        r"\([\d,.]+ MiB free\); free space there \(or raise the limit\) and run again \(the "
                        r"previous output is left as it was\)", message), message
    # torch.save reports a full disk as a RuntimeError raised while handling the OSError: found all the same
    with pytest.raises(DiskFullError, match=r"model.pt: cannot write it: no space left on the device"):
        with writing(tmp_path / "model.pt"), open("/dev/full", "wb") as fh:
            torch.save({"w": torch.zeros(100_000)}, fh)
    assert pickle.loads(pickle.dumps(info.value)).args == info.value.args  # crosses a worker pool intact
    with pytest.raises(OSError, match="Permission denied"):  # any other OSError is not a full disk
        with writing(tmp_path / "x"):
            raise PermissionError(13, "Permission denied")


def test_open_array_reserves_its_blocks(tmp_path):
    # a sparse memmap on a full disk ends the process with SIGBUS at the first page written; reserved
    # blocks cannot run out (and a full disk fails at once, in posix_fallocate, as a DiskFullError)
    with open_array(tmp_path / "a.npy", (64, 64, 64, 3)) as array:
        tmp = next(tmp_path.glob(".a.npy.*.tmp"))
        info = os.stat(tmp)
        assert info.st_size > 64 ** 3 * 3 and info.st_blocks * 512 >= info.st_size
        array[:] = 7
    assert load_array(tmp_path / "a.npy")[5, 5, 5].tolist() == [7, 7, 7]


# --------------------------------------------------------------------------- one write per line

LINES = """
import sys
from twostream.errors import write_line
for i in range(int(sys.argv[2])):
    write_line(f"error: [rank {sys.argv[1]}] " + "x" * 300 + f" line {i}")
"""


def test_lines_of_two_processes_never_interleave():
    # two writers on one pipe, unbuffered (as under torchrun with PYTHONUNBUFFERED=1, where print() writes
    # the text and its newline separately): each line arrives whole
    read, write = os.pipe()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", LINES, str(rank), "400"], stderr=write, env=env)
             for rank in (0, 1)]
    os.close(write)
    with os.fdopen(read, "r") as stream:
        lines = stream.read().splitlines()
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    assert len(lines) == 800
    pattern = re.compile(r"error: \[rank [01]\] x{300} line \d+")
    assert all(pattern.fullmatch(line) for line in lines)
