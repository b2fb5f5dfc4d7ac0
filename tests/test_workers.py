"""Worker pools: spawned workers that leave Ctrl-C to the stage (see tests/test_bad_input.py for Ctrl-C
sent to a whole stage)."""
import signal

import pytest

from twostream.workers import worker_pool


def test_workers_start_with_ctrl_c_blocked_and_ignored():
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    with worker_pool(2) as pool:
        masks = [pool.submit(signal.pthread_sigmask, signal.SIG_BLOCK, []).result() for _ in range(4)]
        handlers = [pool.submit(signal.getsignal, signal.SIGINT).result() for _ in range(4)]
    assert all(signal.SIGINT in mask for mask in masks)
    assert all(handler == signal.SIG_IGN for handler in handlers)
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before  # this process: as it was


def test_an_error_cancels_the_work_not_started():
    with pytest.raises(KeyboardInterrupt), worker_pool(1) as pool:
        futures = [pool.submit(sum, [i]) for i in range(50)]
        raise KeyboardInterrupt
    assert any(future.cancelled() for future in futures)
