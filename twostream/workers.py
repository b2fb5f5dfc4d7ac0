"""Worker processes for CPU-bound data preparation (decoding clips, writing the synthetic dataset).

Workers are spawned, not forked (the parent may hold threads of torch, OpenCV or FFmpeg), and
they leave Ctrl-C to the stage. A terminal sends Ctrl-C to every process of the stage, workers
included; a spawned worker spends its first second or so importing Python, numpy, the stage
script, and would die there with a KeyboardInterrupt traceback of its own. So every worker is
started while this process blocks SIGINT: it inherits the blocked signal (the signal mask
survives fork and exec) and never sees Ctrl-C. This process gets it as soon as the workers are
started, prints the stage's one line (`twostream.cli`) and ends the pool, whose workers finish
the item they hold and take no more.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor


@contextlib.contextmanager
def worker_pool(processes: int, initializer: Callable[[], None] | None = None) -> Iterator[ProcessPoolExecutor]:
    """A pool of `processes` spawned workers that ignore Ctrl-C; on an error (or Ctrl-C) here,
    work not yet started is cancelled. The calling script needs the `if __name__ == "__main__":`
    guard that every stage script has (spawned workers import it)."""
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(initializer,))
    try:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:  # start every worker now, while SIGINT is blocked (the pool starts one per submit)
            for _ in range(processes):
                pool.submit(int)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # a Ctrl-C that came meanwhile is raised here
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _start_worker(initializer: Callable[[], None] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also where a platform does not pass the signal mask on
    if initializer is not None:
        initializer()
