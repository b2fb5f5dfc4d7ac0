"""`twostream aggregate`: finished experiments (as `dvc exp show --json` lists them) grouped by params,
mean ± std over seeds per fold and the HMDB51 three-fold protocol; and on a tiny DVC repository."""
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from twostream import console
from twostream.aggregate import aggregate, finished_experiments, group_experiments, group_table

ROOT = Path(__file__).resolve().parents[1]
BASE = {"seed": 0, "split": {"hmdb51_fold": 1}, "train": {"schedule": "cyclic", "lr": 0.001}}


def _params(seed, fold, **train):
    return {**BASE, "seed": seed, "split": {"hmdb51_fold": fold}, "train": {**BASE["train"], **train}}


def _accuracy(twostream, video=None, flow=0.3):
    return {"hmdb51_flow": flow, "hmdb51_twostream": twostream,
            "video_accuracy": {"hmdb51_twostream": video if video is not None else twostream + 0.05}}


def _exp(name, params, accuracy, state="success"):
    data = {"rev": name, "params": {"params.yaml": {"data": params}}}
    if accuracy is not None:
        data["metrics"] = {"metrics/accuracy.json": {"data": accuracy}}
    entry = {"rev": f"{name}-sha", "name": name, "data": data, "error": None, "experiments": None}
    return {"revs": [entry], "executor": {"state": state} if state else None, "name": name}


def _shown(*experiments):
    """`dvc exp show --json`: the workspace, then the baseline commit with its experiments."""
    base = {"rev": "abc", "name": "main", "data": {"params": {"params.yaml": {"data": BASE}},
                                                   "metrics": {"metrics/accuracy.json": {"data": _accuracy(0.9)}}},
            "error": None, "experiments": list(experiments)}
    return [{"rev": "workspace", "name": None, "data": base["data"], "error": None, "experiments": None}, base]


def test_seeds_are_averaged_per_configuration_and_fold():
    shown = _shown(
        _exp("s0", _params(0, 1), _accuracy(0.50)),
        _exp("s1", _params(1, 1), _accuracy(0.60), state=None),  # finished, loaded from its git ref
        _exp("s2", _params(2, 1), _accuracy(0.55)),
        _exp("step0", _params(0, 1, schedule="step"), _accuracy(0.40)),
        _exp("step1", _params(1, 1, schedule="step"), _accuracy(0.44)),
        _exp("queued", _params(3, 1), None, state="queued"),
        _exp("failed", _params(4, 1), None, state="failed"),
        _exp("broken", _params(5, 1), None),  # finished, but no metrics
    )
    experiments, baseline, notes = finished_experiments(shown)
    assert [e.name for e in experiments] == ["s0", "s1", "s2", "step0", "step1"]  # the baseline is not one
    assert baseline["train.schedule"] == "cyclic"
    assert notes == ["left out queued: queued", "left out failed: failed",
                     "left out broken: no metrics/accuracy.json (failed, or made before evaluate wrote it)"]
    groups, _ = group_experiments(experiments, baseline)
    assert [g.differs for g in groups] == [{}, {"train.schedule": "step"}]
    rows = group_table(groups[0])
    assert rows[0] == ["model (protocol)", "fold 1: mean ± std (seeds)"]
    expected = f"{0.55:.3f} ± {statistics.stdev([0.50, 0.60, 0.55]):.3f} (3)"
    assert ["HMDB51 Two-stream (one clip)", expected] in rows
    assert ["HMDB51 Two-stream (video)", f"0.600 ± {statistics.stdev([0.55, 0.65, 0.60]):.3f} (3)"] in rows
    assert ["HMDB51 Optical flow (one clip)", "0.300 ± 0.000 (3)"] in rows
    assert not any(r[0].startswith("Stanford 40") for r in rows)  # not in the metrics: no row
    text, _ = aggregate(shown)
    assert text.startswith("the baseline's params  (seeds 0, 1, 2; folds 1)\n")
    assert 'train.schedule="step"  (seeds 0, 1; folds 1)' in text
    assert f"0.420 ± {statistics.stdev([0.40, 0.44]):.3f} (2)" in text


def test_three_folds_give_the_hmdb51_protocol():
    accuracies = {(1, 0): 0.50, (1, 1): 0.54, (2, 0): 0.40, (2, 1): 0.46, (3, 0): 0.61, (3, 1): 0.65}
    shown = _shown(*(_exp(f"f{f}s{s}", _params(s, f), _accuracy(a)) for (f, s), a in accuracies.items()))
    experiments, baseline, _ = finished_experiments(shown)
    (group,), _ = group_experiments(experiments, baseline)
    rows = group_table(group)
    assert rows[0][1:] == ["fold 1: mean ± std (seeds)", "fold 2: mean ± std (seeds)", "fold 3: mean ± std (seeds)",
                           "folds 1-3: mean ± std of the fold means"]
    row = next(r for r in rows if r[0] == "HMDB51 Two-stream (one clip)")
    fold_means = [0.52, 0.43, 0.63]
    assert row[1] == f"0.520 ± {statistics.stdev([0.50, 0.54]):.3f} (2)"
    assert row[4] == f"{statistics.mean(fold_means):.3f} ± {statistics.stdev(fold_means):.3f} (3)"
    # two folds only: no protocol column
    two = _shown(*(_exp(f"f{f}s{s}", _params(s, f), _accuracy(a)) for (f, s), a in accuracies.items() if f < 3))
    experiments, baseline, _ = finished_experiments(two)
    (group,), _ = group_experiments(experiments, baseline)
    assert len(group_table(group)[0]) == 3


def test_a_seed_run_twice_counts_once_and_one_seed_has_no_std():
    shown = _shown(_exp("new", _params(7, 1), _accuracy(0.5)), _exp("old", _params(7, 1), _accuracy(0.4)))
    text, notes = aggregate(shown)
    assert notes == ["left out old: the same params as new"]
    line = next(line for line in text.splitlines() if line.startswith("HMDB51 Two-stream (one clip)"))
    assert line.split()[-2:] == ["0.500", "(1)"]


@pytest.mark.parametrize("experiments", [(), (_exp("q", _params(1, 1), None, state="queued"),)])
def test_no_finished_experiments_is_an_error_in_one_line(experiments, capsys, monkeypatch):
    from twostream.commands import aggregate as command
    monkeypatch.setattr(command, "experiments_shown", lambda root, revs, all_commits: _shown(*experiments))
    assert console.main(["aggregate", "--repo", str(ROOT)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: no finished experiments of HEAD")
    assert "dvc exp run --queue -S seed=0,1,2" in err
    if experiments:
        assert "(left out q: queued)" in err


def _run(root, *cmd, timeout=1800):
    import os
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(list(cmd), cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_queued_experiments_of_a_tiny_repository(tmp_path, capsys):
    """DVC's queue and grid syntax on a one-stage pipeline writing metrics/accuracy.json from its params
    (each queued experiment costs DVC a temporary copy and a worker: seconds to minutes); the whole
    pipeline over two seeds is in tests/test_pipeline_dvc.py."""
    root = tmp_path / "repo"
    root.mkdir()
    (root / "params.yaml").write_text(json.dumps(BASE) + "\n")
    (root / "make.py").write_text(
        "import json, os, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))\n"
        "os.makedirs('metrics', exist_ok=True)\n"
        "a = 0.5 + 0.01 * p['seed'] + 0.1 * p['split']['hmdb51_fold']\n"
        "json.dump({'hmdb51_twostream': a, 'video_accuracy': {'hmdb51_twostream': a}}, "
        "open('metrics/accuracy.json', 'w'))\n")
    (root / "dvc.yaml").write_text("stages:\n  evaluate:\n    cmd: python make.py\n    deps: [make.py]\n"
                                   "    params: [seed, split.hmdb51_fold, train]\n"
                                   "    metrics:\n      - metrics/accuracy.json:\n          cache: false\n")
    _run(root, "git", "init", "-q")
    _run(root, sys.executable, "-m", "dvc", "init", "-q")
    _run(root, sys.executable, "-m", "dvc", "repro", "-q")
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "baseline")
    assert console.main(["aggregate", "--repo", str(root)]) == 1  # nothing run yet
    assert capsys.readouterr().err.startswith("error: no finished experiments of HEAD;")
    _run(root, sys.executable, "-m", "dvc", "exp", "run", "--queue", "-S", "seed=0,1", "-S", "split.hmdb51_fold=1,2")
    _run(root, sys.executable, "-m", "dvc", "exp", "run", "--run-all", "-j", "1")  # runs the queue, waits
    assert console.main(["aggregate", "--repo", str(root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the baseline's params  (seeds 0, 1; folds 1, 2)\n")
    # fold f, seed s: 0.5 + 0.01 s + 0.1 f; mean over seeds 0.505 + 0.1 f, std 0.01 / sqrt(2)
    line = next(line for line in out.splitlines() if line.startswith("HMDB51 Two-stream (one clip)"))
    assert line.split()[4:] == ["0.605", "±", "0.007", "(2)", "0.705", "±", "0.007", "(2)"]
