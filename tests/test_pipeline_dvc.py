"""The DVC pipeline end to end on a tiny setting, in a temporary copy of the repository.

Checks what `dvc repro` promises: every stage runs, a second repro does nothing,
and changing one param re-runs only the stages that depend on it.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

TINY = {
    "data.synthetic.images_per_class": 20,
    "data.synthetic.videos_per_class": 16,
    "data.synthetic.min_frames": 12,
    "data.synthetic.max_frames": 16,
    "image.size": 32,
    "train.batch_size": 16,
    "train_spatial.epochs": 1,
    "finetune.epochs": 1,
    "train_flow.epochs": 1,
    "train_fusion.epochs": 1,
}


def set_params(path, changes):
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def stages_run(output):
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository holding the project's files (committed or not) with tiny params."""
    dest = tmp_path_factory.mktemp("repo")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file() and not name.startswith(("data/", "models/", "metrics/", "plots/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "dvc.lock").unlink(missing_ok=True)
    set_params(dest / "params.yaml", TINY)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(dest)}
    run(["git", "init", "-q"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "tiny"], dest, env)
    return dest, env


def dvc(repo, *args):
    dest, env = repo
    return run([sys.executable, "-m", "dvc", *args], dest, env)


def find_named(node, name):
    """The first mapping with "name" == name in `dvc exp show --json` output."""
    if isinstance(node, dict):
        if node.get("name") == name and "data" in node:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = find_named(child, name)
            if found is not None:
                return found
    return None


def all_stages(repo):
    """Stage names as dvc reports them (a foreach stage expands to name@item)."""
    names = set()
    for name, stage in yaml.safe_load((repo[0] / "dvc.yaml").read_text())["stages"].items():
        names |= {f"{name}@{item}" for item in stage["foreach"]} if "foreach" in stage else {name}
    return names


def test_repro_runs_every_stage_then_nothing(repo):
    first = dvc(repo, "repro")
    assert stages_run(first) == all_stages(repo)
    dest = repo[0]
    assert (dest / "dvc.lock").is_file()
    for name in ("stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream"):
        assert (dest / "models" / f"{name}.pt").stat().st_size > 0
    second = dvc(repo, "repro")
    assert stages_run(second) == set()
    assert "Data and pipelines are up to date" in dvc(repo, "status")


def test_changing_flow_method_reruns_only_flow_and_what_depends_on_it(repo):
    dvc(repo, "repro")  # in case the test runs alone
    set_params(repo[0] / "params.yaml", {"flow.method": "farneback"})
    status = dvc(repo, "status")
    assert re.findall(r"^(\w+):", status, re.M) == ["flow"]
    output = dvc(repo, "repro")
    downstream = {"flow", "train_flow", "train_fusion"} | ({"evaluate"} & all_stages(repo))
    assert stages_run(output) == downstream


def test_bad_param_stops_the_stage_with_a_clear_message(repo):
    dest, env = repo
    set_params(dest / "params.yaml", {"image.size": 8})
    proc = subprocess.run([sys.executable, "stages/split.py", "--raw", "data/raw", "--out", "/tmp/unused"],
                          cwd=dest, env=env, capture_output=True, text=True)
    set_params(dest / "params.yaml", {"image.size": TINY["image.size"]})
    assert proc.returncode == 1
    assert "error: params.yaml: image.size: must be >= 32 pixels, got 8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_experiments_and_metrics_diff_across_commits(repo):
    """`dvc exp run -S` makes an experiment visible in `dvc exp show`; `dvc metrics diff`
    between two commits reports what changed."""
    import json

    dest, env = repo
    set_params(dest / "params.yaml", {"flow.method": "dis"})
    dvc(repo, "repro")
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "baseline"], dest, env)
    baseline = json.loads((dest / "metrics" / "hmdb51_twostream.json").read_text())
    assert set(baseline) == {"params", "best_epoch", "epochs", "train", "val", "test"}
    assert set(baseline["test"]) == {"accuracy", "loss", "top5", "mean_class_accuracy"}

    dvc(repo, "exp", "run", "-n", "longer", "-S", "train_fusion.epochs=2")
    proc = subprocess.run([sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=dest, env=env,
                          capture_output=True, text=True, check=True)
    experiment = find_named(json.loads(proc.stdout), "longer")
    assert experiment is not None, proc.stdout[:2000]
    assert experiment["data"]["params"]["params.yaml"]["data"]["train_fusion"]["epochs"] == 2
    metrics = experiment["data"]["metrics"]["metrics/hmdb51_twostream.json"]["data"]
    assert metrics["epochs"] == 2

    # a second commit with different params: metrics diff between the commits reports the change
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "two fusion epochs"], dest, env)
    diff = dvc(repo, "metrics", "diff", "HEAD~1", "HEAD", "--json")
    changed = json.loads(diff[diff.index("{"):])
    assert "metrics/hmdb51_twostream.json" in changed
    assert "epochs" in changed["metrics/hmdb51_twostream.json"]
    assert changed["metrics/hmdb51_twostream.json"]["epochs"]["diff"] == 1
