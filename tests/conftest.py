import os
import shutil
import sys

import pytest

from helpers import TINY, commit_repository, copy_repository, environment, ok, run, run_stage, set_yaml, workspace

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


# --- fixtures several modules share (their helpers: tests/helpers.py) ----------------------------------

@pytest.fixture(scope="session")
def tiny_pipeline(tmp_path_factory):
    """The project's files (committed or not) in a new git repository with TINY params, `dvc repro` run
    once for the session: (directory, the repro's output). Tests use `repo`, a copy of it."""
    dest = copy_repository(tmp_path_factory.mktemp("tiny_pipeline"))
    set_yaml(dest / "params.yaml", TINY)
    set_yaml(dest / "runtime.yaml", {"progress": False, "downloads.cache_dir": ".cache"})
    env = environment(dest)
    commit_repository(dest, env, "tiny")
    first = run([sys.executable, "-m", "dvc", "repro"], dest, env)
    return dest, first


@pytest.fixture(scope="module")
def repo(tiny_pipeline, tmp_path_factory):
    """A module's own copy of `tiny_pipeline` (work tree, git history, DVC cache and run-cache):
    (directory, environment, the first `dvc repro`'s output). The module's tests share it."""
    source, first = tiny_pipeline
    dest = tmp_path_factory.mktemp("repo") / "repo"
    shutil.copytree(source, dest, symlinks=True)
    return dest, environment(dest), first


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """A `workspace` (SMALLEST params) where check_params, download, split, pad_resize and sample_frames
    ran (each must succeed), once for the session. Tests change copies of it (`ws`), never it."""
    base = workspace(tmp_path_factory.mktemp("prepared"))
    for stage in ("check_params", "download", "split", "pad_resize", "sample_frames"):
        ok(run_stage(base, stage))
    return base


@pytest.fixture
def ws(prepared, tmp_path):
    """A private copy of the prepared workspace."""
    dest = tmp_path / "ws"
    shutil.copytree(prepared, dest)
    return dest
