"""Atomic writes: an interrupted stage never leaves a half-written file that looks complete.

Everything is written to a temporary sibling (`.<name>.<random>.tmp`), then renamed into
place with os.replace (atomic on POSIX within one filesystem). A run killed outright
(SIGKILL, power loss) cannot clean up after itself, so the next atomic write of the same
output first removes such leftovers.

A full disk (ENOSPC), a quota (EDQUOT) or a file-size limit (EFBIG, `ulimit -f`) while writing
is a `DiskFullError` naming the output file: the temporary file goes, the previous output stays.
Array memmaps reserve their blocks when created (`reserve`): a sparse file would otherwise fail
later, inside a page write, with SIGBUS and no message.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twostream.errors import DiskFullError, InputError, MissingInputError, disk_full_cause

# tempfile's random part: 8 characters from this alphabet
_RANDOM = "[a-z0-9_]{8}"


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a write that runs out of room inside the block into a DiskFullError naming `path`."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        cause = disk_full_cause(exc)
        if cause is None:
            raise
        raise DiskFullError.of(path, cause) from None


def reserve(path: str | Path) -> None:
    """Allocate the blocks of the file at `path` (its current size) now, so writes through a memmap of it
    cannot run out of room; where the filesystem cannot (no posix_fallocate), nothing happens."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size:
            try:
                os.posix_fallocate(fh.fileno(), 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # unsupported: nothing reserved
                    raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_leftovers(path: str | Path) -> list[Path]:
    """Delete what an interrupted earlier write of `path` left next to it; returns what went."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:{_RANDOM}\.tmp|old)")
    removed = []
    for leftover in path.parent.iterdir():
        if pattern.fullmatch(leftover.name):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success rename it onto `path`."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; a normal write follows the umask
            os.replace(tmp_path, path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; on success it replaces `path` whole."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        tmp_path = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o777 & ~_umask())
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(path, old)
                os.replace(tmp_path, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp_path, path)
        except DiskFullError as exc:  # a file inside: named where it was going to be, not in the temporary
            shutil.rmtree(tmp_path, ignore_errors=True)
            inner = Path(str(exc.path))
            if inner.is_relative_to(tmp_path):
                raise DiskFullError(path / inner.relative_to(tmp_path), exc.reason) from None
            raise
        except BaseException:
            shutil.rmtree(tmp_path, ignore_errors=True)
            raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


@contextlib.contextmanager
def open_array(path: str | Path, shape: tuple[int, ...], dtype: Any = np.uint8) -> Iterator[np.ndarray]:
    """A writable .npy memmap filled in place, renamed into `path` only when complete.

    For arrays too big to hold in memory (frames of thousands of videos at 224 px).
    """
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        try:
            reserve(tmp)
            yield array
            array.flush()
        finally:
            del array


def load_array(path: str | Path, mmap: bool = True) -> np.ndarray:
    """Load a .npy written by this module; a missing file names the stage to run."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: array not found; run `dvc repro` to produce it")
    return np.load(path, mmap_mode="r" if mmap else None)


def same_array(a: np.ndarray, b: np.ndarray, rows: int = 64) -> bool:
    """Whether two arrays (memmaps too) have the same shape and values, compared `rows` rows at a time so
    that memory stays bounded."""
    return a.shape == b.shape and all(np.array_equal(a[i:i + rows], b[i:i + rows]) for i in range(0, len(a), rows))


def read_csv(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a CSV and check it has the expected columns."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: not found; run `dvc repro` to produce it")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({' '.join(str(exc).split())}); "
                         f"re-run the stage that writes it") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: lacks column(s) {', '.join(missing)}; re-run the stage that writes it")
    return frame
