import os

import pytest

# Keep CPU tests deterministic and polite on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(0)
