"""Shared entry point of the stage scripts: logging, params, and clean endings.

Expected failures (`twostream.errors.TwostreamError`: a bad param, a missing or corrupt input
file, no network for a download, weights not cached) end the stage with one line naming the
file or key, exit status 1 and no traceback; Ctrl-C ends it with one line and exit status 130.
Anything else is a bug and keeps its traceback. Outputs are written atomically, so neither
ending leaves a partial result behind. A write that runs out of room (a full disk, a quota, the
file-size limit) is one line too: `twostream.io` names the file; anything else that hits it
(a library writing its own files) is caught here. SIGXFSZ is ignored, so going over
`ulimit -f` is such a write error and not a silent kill.

Every line a stage writes to stderr (its error line, its log records) goes out in one
`os.write` (`twostream.errors.write_line`): the lines of torchrun's processes never
interleave within a line.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable

from twostream.errors import DiskFullError, TwostreamError, disk_full_cause, write_line
from twostream.params import Params, RuntimeParams, load_params, load_runtime

log = logging.getLogger("twostream")

INTERRUPTED = 128 + signal.SIGINT  # the shell's exit status for a process ended by Ctrl-C


def stage_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--runtime", default="runtime.yaml", help="runtime settings (default: runtime.yaml)")
    return parser


def _rank_prefix() -> str:
    """`[rank 1] ` under torchrun with several processes, else nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"[rank {os.environ.get('RANK', '?')}] "
    return ""


# How a collective operation fails when another process of the group has ended (gloo, NCCL)
PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "remote process exited", "Broken pipe")


def _peer_gone(exc: BaseException) -> bool:
    """A collective operation that failed because another torchrun process ended (its error is the cause)."""
    return (int(os.environ.get("WORLD_SIZE", "1")) > 1 and isinstance(exc, RuntimeError)
            and any(text in str(exc) for text in PEER_GONE))


class LineHandler(logging.StreamHandler):
    """A stderr log handler that writes each record (all its lines) with one `os.write`."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))
        except Exception:  # noqa: BLE001 - logging's own policy for a failing handler
            self.handleError(record)


def setup_logging(level: int, prefix: str = "") -> None:
    """Log records to stderr, one write per record, with the rank prefix under torchrun."""
    handler = LineHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


def run_stage(main: Callable[[argparse.Namespace, Params, RuntimeParams | None], None],
              parser: argparse.ArgumentParser, runtime: bool = True) -> None:
    """Parse the arguments, load params.yaml (and runtime.yaml unless `runtime` is False), run `main`."""
    prefix = _rank_prefix()
    # under torchrun, rank 0 reports progress; the other processes only warnings and errors
    level = logging.INFO if int(os.environ.get("RANK", "0")) == 0 else logging.WARNING
    setup_logging(level, prefix)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over `ulimit -f`: the write fails with EFBIG instead
    args = parser.parse_args()
    try:
        try:
            main(args, load_params(args.params), load_runtime(args.runtime) if runtime else None)
        except (OSError, RuntimeError) as exc:  # a write outside twostream.io that ran out of room
            cause = disk_full_cause(exc)
            if cause is None:
                raise
            raise DiskFullError.of(cause.filename or "a file of this stage's outputs", cause) from None
    except TwostreamError as exc:
        write_line(f"error: {prefix}{exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        # torchrun passes Ctrl-C on to its processes once more: that one must not cut this line short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        write_line(f"error: {prefix}interrupted (Ctrl-C); no partial output is left: run the stage again")
        sys.exit(INTERRUPTED)
    except RuntimeError as exc:
        if not _peer_gone(exc):
            raise
        write_line(f"error: {prefix}stopped: another process of this run ended (see its message)")
        sys.exit(1)
