import os

import pytest

# Keep CPU tests deterministic and polite on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _signal_handlers():
    """A stage run in-process (`twostream.cli.run_stage`) ignores SIGXFSZ, and SIGINT once it reports one:
    give the next test the handlers this one started with."""
    import signal
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGXFSZ)}
    yield
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)
