"""The project's exception types: the failures a user can fix, each ending a stage with one line.

Every stage script catches `TwostreamError` (see `twostream.cli`): the message names the file,
line or params key and what to do, the exit status is 1 and there is no traceback. Anything
else is a bug and keeps its traceback. `write_line` is how such a line goes out. This module
imports nothing of the project, so a stage that only needs the error types does not pull the
library into its dependencies.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from pathlib import Path


class TwostreamError(Exception):
    """Base of the expected failures: bad params, bad or missing input, an unavailable resource."""


class ParamsError(TwostreamError, ValueError):
    """A missing, unknown or invalid key in params.yaml or runtime.yaml."""


class MissingInputError(TwostreamError, FileNotFoundError):
    """An input file or directory a stage needs does not exist (an earlier stage did not run)."""


class InputError(TwostreamError, ValueError):
    """A prepared input (manifest, array, model file) that is malformed or inconsistent."""


class ListError(TwostreamError, ValueError):
    """A split list or manifest that is missing, malformed, or contradicts the class table."""


class ImageError(TwostreamError, ValueError):
    """An image file that is missing, truncated or cannot be decoded."""


class VideoError(TwostreamError, ValueError):
    """A video that cannot be opened, decodes with errors, is truncated, or is too short."""


class SourceError(TwostreamError, RuntimeError):
    """A real-data download or archive that cannot be fetched, verified or extracted."""


class WeightsUnavailable(TwostreamError, RuntimeError):
    """Pretrained weights are neither cached nor downloadable."""


class DeviceUnavailable(TwostreamError, RuntimeError):
    """The settings ask for a device this machine does not have."""


class TrainingError(TwostreamError, RuntimeError):
    """Training that produced no usable model (e.g. a loss that is NaN in every epoch)."""


class DiskFullError(TwostreamError):
    """A write that ran out of room: no space left, a disk quota, or a file-size limit (ENOSPC, EDQUOT,
    EFBIG). Raised by `twostream.io`, naming the file; atomic writes leave the previous output as it was."""

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: cannot write it: {reason}; free space there (or raise the limit) and run "
                         f"again (the previous output is left as it was)")

    def __reduce__(self):  # a worker process's error pickles with its arguments
        return type(self), (self.path, self.reason)

    @classmethod
    def of(cls, path: object, exc: OSError) -> DiskFullError:
        """The error for `exc` (one `disk_full_cause` finds) while writing `path`, with the space left there."""
        reason = _NO_ROOM[exc.errno]
        if exc.errno != errno.EFBIG:
            folder = Path(str(path)).absolute().parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            with contextlib.suppress(OSError):
                reason += f" ({shutil.disk_usage(folder).free / 2**20:,.1f} MiB free)"
        return cls(path, reason)


# errno of a write that ran out of room -> what to tell the user
_NO_ROOM = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file would exceed the largest file allowed (the process's file size limit, "
                 "`ulimit -f`, or the filesystem's)",
}


def disk_full_cause(exc: BaseException | None) -> OSError | None:
    """The write that ran out of room (ENOSPC, EDQUOT, EFBIG) behind `exc`: itself, or an exception it was
    raised from or while handling (torch.save, for one, reports it as a RuntimeError); None if none."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def write_line(line: str) -> None:
    """Write `line` and its newline to stderr in one `os.write`: the lines of processes sharing the stream
    (torchrun's ranks, worker pools) never interleave within a line (a write of at most PIPE_BUF bytes
    to a pipe is atomic). What sys.stderr holds is flushed first, so the order of lines is kept."""
    data = (line.rstrip("\n") + "\n").encode("utf-8", "backslashreplace")
    try:
        sys.stderr.flush()
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # a stream without a descriptor (a capture in tests)
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.write(data.decode("utf-8"))
            sys.stderr.flush()
        return
    while data:
        data = data[os.write(fd, data):]
