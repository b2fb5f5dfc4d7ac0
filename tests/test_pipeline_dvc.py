"""The DVC pipeline end to end on a tiny setting, in a temporary copy of the repository.

Checks what DVC promises and this project must keep true: every stage runs, a second repro does
nothing, changing one param re-runs only the stages that depend on it, runtime settings re-run
nothing, every stage is restored from the run-cache instead of re-run (locally and from a remote,
on another clone), the same inputs give the same bytes, and a bad or unknown key in params.yaml
fails `dvc repro` even when no stage would run.
"""
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import (ROOT, TINY, TRAINING, all_stages, environment, run, set_yaml, stages_restored,
                     stages_run)

pytestmark = pytest.mark.slow


def md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def dvc(repo, *args, check=True):
    dest, env = repo[0], repo[1]
    return run([sys.executable, "-m", "dvc", *args], dest, env, check=check)


def git(repo, *args):
    return run(["git", *args], repo[0], repo[1])


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


@pytest.mark.e2e
def test_repro_runs_every_stage_then_nothing(repo):
    dest = repo[0]
    assert stages_run(repo[2]) == all_stages(dest)
    assert (dest / "dvc.lock").is_file()
    for name in ("stanford40_frames.pt", "hmdb51_frames/middle.pt", "hmdb51_flow.pt", "hmdb51_twostream.pt"):
        assert (dest / "models" / name).stat().st_size > 0
    assert stages_run(dvc(repo, "repro")) == set()
    assert "Data and pipelines are up to date" in dvc(repo, "status")


def test_failed_or_finished_training_leaves_no_duplicate_summary(repo):
    """Train/val figures are DVC metrics once (metrics/<model>.json), not also DVCLive's metrics.json."""
    dest = repo[0]
    assert not list((dest / "plots" / "training").rglob("metrics.json"))
    curves = dest / "plots" / "training" / "hmdb51_flow"
    assert sorted(str(p.relative_to(curves)) for p in curves.rglob("*.tsv")) == [
        "lr.tsv", "train/accuracy.tsv", "train/loss.tsv", "val/accuracy.tsv", "val/loss.tsv"]


def test_runtime_settings_rerun_nothing(repo):
    dest = repo[0]
    set_yaml(dest / "runtime.yaml", {"loader_workers": 0, "pin_memory": True, "device": "cpu", "prep_processes": 1,
                                     "flow_batch_size": 4})
    try:
        assert "Data and pipelines are up to date" in dvc(repo, "status")
        assert stages_run(dvc(repo, "repro")) == set()
    finally:
        git(repo, "checkout", "runtime.yaml")


def test_same_inputs_give_the_same_bytes(repo):
    """Forced re-runs of a data stage and a training stage write byte-identical outputs:
    dvc.lock (every output's md5) and the committed-results files do not change."""
    dest = repo[0]
    dvc(repo, "repro")
    lock = (dest / "dvc.lock").read_text()
    model = md5(dest / "models" / "hmdb51_flow.pt")
    curves = {p: md5(p) for p in (dest / "plots" / "training" / "hmdb51_flow").rglob("*.tsv")}
    for stage in ("flow", "hmdb51_flow"):
        output = dvc(repo, "repro", "-f", "-s", stage)
        assert stages_run(output) == {stage}
        assert (dest / "dvc.lock").read_text() == lock, f"forced {stage} changed an output's md5"
    assert md5(dest / "models" / "hmdb51_flow.pt") == model
    assert {p: md5(p) for p in curves} == curves
    assert stages_run(dvc(repo, "repro")) == set()  # nothing downstream became stale
    results = {p: md5(p) for p in [*(dest / "plots" / "predictions").glob("*.csv"), *(dest / "metrics").glob("*.json")]}
    assert len(results) == 13 + 7  # 13 prediction files (9 models x protocols, 4 study positions), 7 metrics files
    assert stages_run(dvc(repo, "repro", "-f", "-s", "evaluate")) == {"evaluate"}
    assert {p: md5(p) for p in results} == results  # the metrics and the per-video predictions: the same bytes


def test_param_change_and_back_restores_from_the_run_cache(repo):
    dest = repo[0]
    dvc(repo, "repro")
    set_yaml(dest / "params.yaml", {"train.weight_decay": 0.001})
    changed = dvc(repo, "repro")
    assert TRAINING <= stages_run(changed)
    set_yaml(dest / "params.yaml", {"train.weight_decay": 0.0})
    back = dvc(repo, "repro")
    # check_params (no outputs, nothing to cache) re-validates the edited params.yaml in a second
    assert stages_run(back) == {"check_params"}, f"ran again instead of restoring: {stages_run(back)}"
    assert TRAINING | {"evaluate"} <= stages_restored(back)
    assert "Data and pipelines are up to date" in dvc(repo, "status")


def test_changing_flow_method_reruns_only_flow_and_what_depends_on_it(repo):
    dest = repo[0]
    dvc(repo, "repro")
    set_yaml(dest / "params.yaml", {"flow.method": "farneback"})
    try:
        status = dvc(repo, "status")
        assert set(re.findall(r"^([\w@]+):", status, re.M)) == {"check_params", "flow"}
        output = dvc(repo, "repro")
        assert stages_run(output) == {"check_params", "flow", "hmdb51_flow", "hmdb51_twostream", "evaluate"}
    finally:
        set_yaml(dest / "params.yaml", {"flow.method": "dis"})
    assert stages_run(dvc(repo, "repro")) == {"check_params"}  # back to dis: everything else restored


def test_changing_the_test_clips_trains_nothing(repo):
    """video_test.clips is sample_frames' param; the training stages read only the train and val arrays."""
    dest = repo[0]
    dvc(repo, "repro")
    clips = yaml.safe_load((dest / "params.yaml").read_text())["video_test"]["clips"]
    frames = np.load(dest / "data" / "frames" / "hmdb51_test_clip_frames.npy", mmap_mode="r")
    flow = np.load(dest / "data" / "flow" / "hmdb51_test_clips.npy", mmap_mode="r")
    n_test = len(pd.read_csv(dest / "data" / "frames" / "hmdb51_test.csv"))
    size = TINY["image.size"]
    assert frames.shape == (n_test, clips, size, size, 3) and flow.shape == (n_test, clips, 8, size, size, 3)
    assert not (dest / "data" / "frames" / "hmdb51_train_clip_frames.npy").exists()  # test videos only
    set_yaml(dest / "params.yaml", {"video_test.clips": 2})
    try:
        assert set(re.findall(r"^([\w@]+):", dvc(repo, "status"), re.M)) - {"check_params"} == {"sample_frames"}
        output = dvc(repo, "repro")
        assert stages_run(output) - {"check_params"} == {"sample_frames", "flow", "evaluate"}
        assert np.load(dest / "data" / "flow" / "hmdb51_test_clips.npy", mmap_mode="r").shape[1] == 2
    finally:
        set_yaml(dest / "params.yaml", {"video_test.clips": clips})
    assert stages_run(dvc(repo, "repro")) <= {"check_params"}  # restored from the run-cache


def test_grouped_validation_keeps_source_videos_apart(repo):
    """The default split.val_groups: source: no source video has clips in both train and val."""
    from twostream.data.splits import shared_sources
    dest = repo[0]
    dvc(repo, "repro")
    assert yaml.safe_load((dest / "params.yaml").read_text())["split"]["val_groups"] == "source"
    train, val = (pd.read_csv(dest / "data" / "manifests" / f"hmdb51_{s}.csv") for s in ("train", "val"))
    assert len(val) > 0 and not set(train["path"]) & set(val["path"])
    assert not shared_sources(train, val)


def test_changing_frame_position_retrains_only_the_fusion(repo):
    dest = repo[0]
    dvc(repo, "repro")
    set_yaml(dest / "params.yaml", {"frames.position": "last"})
    try:
        output = dvc(repo, "repro")
        assert stages_run(output) == {"check_params", "hmdb51_twostream", "evaluate"}, \
            "the five frame models are trained once"
        others = {"first", "first_middle", "middle", "middle_last"}  # the study: every position but frames.position
        study = json.loads((dest / "metrics" / "frame_positions.json").read_text())
        assert study.keys() == others | {"accuracy_ci95"} and study["accuracy_ci95"].keys() == others
    finally:
        set_yaml(dest / "params.yaml", {"frames.position": "middle"})
    dvc(repo, "repro")


@pytest.mark.parametrize("text, message", [
    ("imgae:\n  size: 64\n", "params.yaml: imgae: unknown key"),
    ("stanford40_frames:\n  lr: [1]\n", "params.yaml: stanford40_frames.lr: must be a number"),
])
def test_bad_params_fail_repro_even_when_no_stage_would_run(repo, text, message):
    dest = repo[0]
    dvc(repo, "repro")
    original = (dest / "params.yaml").read_text()
    data = yaml.safe_load(original)
    patch = yaml.safe_load(text)
    for key, value in patch.items():
        if key in data and isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        proc = dvc(repo, "repro", check=False)
        assert proc.returncode != 0
        assert message in proc.stderr + proc.stdout
        assert "Traceback" not in proc.stderr + proc.stdout
    finally:
        (dest / "params.yaml").write_text(original)
    assert stages_run(dvc(repo, "repro")) <= {"check_params"}


def test_yaml_1_2_floats_are_read_as_dvc_reads_them(repo):
    """`1e-3` is a float to DVC (YAML 1.2) and must be one to the stages too."""
    dest = repo[0]
    dvc(repo, "repro")
    original = (dest / "params.yaml").read_text()
    text = re.sub(r"(hmdb51_twostream:\n(?:  .*\n)*?  lr: )\S+", r"\g<1>1e-3", original)
    assert text != original
    (dest / "params.yaml").write_text(text)
    try:
        output = dvc(repo, "repro")
        assert {"check_params", "hmdb51_twostream"} <= stages_run(output)
        lock = yaml.safe_load((dest / "dvc.lock").read_text())
        assert lock["stages"]["hmdb51_twostream"]["params"]["params.yaml"]["hmdb51_twostream"]["lr"] == 0.001
    finally:
        (dest / "params.yaml").write_text(original)
    dvc(repo, "repro")


def test_bad_param_stops_the_stage_with_a_clear_message(repo):
    dest, env = repo[0], repo[1]
    set_yaml(dest / "params.yaml", {"image.size": 8})
    proc = subprocess.run([sys.executable, "stages/split.py", "--raw", "data/raw", "--out", str(dest / "unused")],
                          cwd=dest, env=env, capture_output=True, text=True)
    set_yaml(dest / "params.yaml", {"image.size": TINY["image.size"]})
    assert proc.returncode == 1
    assert "error: params.yaml: image.size: must be a multiple of 32 (>= 32)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (dest / "unused").exists()


def test_experiments_and_metrics_diff_across_commits(repo):
    """`dvc exp run -S` makes an experiment visible in `dvc exp show`; `dvc metrics diff`
    between two commits reports what changed."""
    dest = repo[0]
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    baseline = json.loads((dest / "metrics" / "hmdb51_twostream.json").read_text())
    assert set(baseline) == {"params", "best_epoch", "epochs", "train", "val", "test"}
    assert set(baseline["test"]) == {"accuracy_ci95", "video_accuracy_ci95", "loss", "top5", "mean_class_accuracy"}
    accuracy = json.loads((dest / "metrics" / "accuracy.json").read_text())
    assert list(accuracy) == ["stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream",
                              "hmdb51_late_fusion", "video_accuracy"]
    assert list(accuracy["video_accuracy"]) == ["hmdb51_frames", "hmdb51_flow", "hmdb51_twostream",
                                                "hmdb51_late_fusion"]
    late = json.loads((dest / "metrics" / "hmdb51_late_fusion.json").read_text())
    assert late == {"test": {"accuracy_ci95": late["test"]["accuracy_ci95"], "loss": late["test"]["loss"],
                             "top5": late["test"]["top5"], "mean_class_accuracy": late["test"]["mean_class_accuracy"],
                             "video_accuracy_ci95": late["test"]["video_accuracy_ci95"]}}
    low, high = late["test"]["accuracy_ci95"]
    assert 0 <= low <= accuracy["hmdb51_late_fusion"] <= high <= 1

    dvc(repo, "exp", "run", "-n", "longer", "-S", "hmdb51_twostream.epochs=2")
    experiment = find_named(json.loads(dvc(repo, "exp", "show", "--json")), "longer")
    assert experiment is not None
    assert experiment["data"]["params"]["params.yaml"]["data"]["hmdb51_twostream"]["epochs"] == 2
    assert experiment["data"]["metrics"]["metrics/hmdb51_twostream.json"]["data"]["epochs"] == 2

    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two fusion epochs")
    diff = dvc(repo, "metrics", "diff", "HEAD~1", "HEAD", "--json")
    changed = json.loads(diff[diff.index("{"):])
    assert changed["metrics/hmdb51_twostream.json"]["epochs"]["diff"] == 1
    set_yaml(dest / "params.yaml", {"hmdb51_twostream.epochs": 1})
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "back to one fusion epoch")


def test_exp_show_is_readable(repo):
    """Test accuracies first, no figure twice, at most 60 metric columns, no runtime settings."""
    dest = repo[0]
    dvc(repo, "repro")
    csv = dvc(repo, "exp", "show", "--csv", "--hide-queued", "--hide-failed")
    header = csv.splitlines()[0].split(",")
    metric_files = yaml.safe_load((dest / "dvc.yaml").read_text())["stages"]["evaluate"]["metrics"]
    shown = json.loads(dvc(repo, "metrics", "show", "--json"))
    (workspace,) = shown.values()  # the workspace only (its key is "")
    values = [v for f in workspace["data"].values() for v in _leaves(f["data"])]
    assert len(values) <= 60, f"{len(values)} metric columns"
    assert len(metric_files) == len(workspace["data"])
    # after DVC's own columns (Experiment, rev, typ, Created and, in newer versions, parent/State/Executor)
    own = {"Experiment", "rev", "typ", "Created", "parent", "State", "Executor"}
    first = [h for h in header if h not in own][:4]
    assert first == ["stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream"], header[:12]
    assert not any(h.startswith(("torchrun_processes", "loader_workers", "device", "downloads")) for h in header)
    assert any("video_accuracy" in h for h in header)  # video-level accuracy: metric names with "video"
    # no figure twice: the test accuracy of a model appears in one file only
    accuracy = json.loads((dest / "metrics" / "accuracy.json").read_text())
    for name in ("hmdb51_flow", "hmdb51_twostream", "hmdb51_late_fusion"):
        assert "accuracy" not in json.loads((dest / "metrics" / f"{name}.json").read_text())["test"]
        assert accuracy[name] >= 0 and accuracy["video_accuracy"][name] >= 0
    # evaluate's analysis: the results text and the per-class figure
    results = (dest / "metrics" / "results.md").read_text()
    assert "## One clip vs the whole video" in results and "## Designed class pairs" in results
    assert (dest / "plots" / "per_class_accuracy.png").stat().st_size > 0
    for name in ("hmdb51_late_fusion", "hmdb51_late_fusion_video", "hmdb51_frames_video"):
        assert (dest / "plots" / "confusion" / f"{name}.csv").is_file()
    # the per-video predictions: every model and protocol, the study's other positions; in git (cache: false)
    predictions = sorted(p.name for p in (dest / "plots" / "predictions").iterdir())
    assert predictions == sorted([*(f"{m}.csv" for m in accuracy if m != "video_accuracy"),
                                  *(f"{m}_video.csv" for m in accuracy["video_accuracy"]),
                                  *(f"frame_position_{p}.csv" for p in ("first", "first_middle", "middle_last",
                                                                        "last"))])
    rows = pd.read_csv(dest / "plots" / "predictions" / "hmdb51_twostream_video.csv")
    assert list(rows.columns[:3]) == ["path", "actual", "predicted"] and len(rows.columns) == 3 + 12
    assert (rows["actual"] == rows["predicted"]).mean() == pytest.approx(accuracy["video_accuracy"]["hmdb51_twostream"])
    ignored = subprocess.run(["git", "check-ignore", "-q", "plots/predictions/hmdb51_twostream.csv"], cwd=dest)
    assert ignored.returncode == 1  # not ignored: git keeps them


def test_aggregate_two_seeds_run_through_the_queue(repo):
    """Two seeds of the tiny setting queued with DVC's grid syntax, run by its queue, aggregated by
    `twostream aggregate` (mean ± std over the seeds, per model and protocol)."""
    dest, env = repo[0], repo[1]
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline of the seeds", "--allow-empty")
    dvc(repo, "exp", "run", "--queue", "-S", "seed=1,2")
    dvc(repo, "exp", "run", "--run-all", "-j", "1")
    out = run([sys.executable, "-m", "twostream.console", "aggregate"], dest, env)
    assert out.startswith("the baseline's params  (seeds 1, 2; folds 1)\n"), out
    shown = json.loads(dvc(repo, "exp", "show", "--json"))
    accuracies = [e["revs"][0]["data"]["metrics"]["metrics/accuracy.json"]["data"]
                  for commit in shown if commit["rev"] != "workspace" for e in commit["experiments"] or []]
    assert len(accuracies) == 2
    for label, values in (("HMDB51 Two-stream (one clip)", [a["hmdb51_twostream"] for a in accuracies]),
                          ("HMDB51 Optical flow (video)", [a["video_accuracy"]["hmdb51_flow"] for a in accuracies])):
        line = next(line for line in out.splitlines() if line.startswith(label))
        assert line.split()[-4:] == [f"{np.mean(values):.3f}", "±", f"{np.std(values, ddof=1):.3f}", "(2)"], line


def _leaves(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    else:
        yield node


def test_remote_push_clone_pull_and_run_cache(repo, tmp_path):
    """A local-directory remote: push with the run-cache, a fresh clone pulls everything (status
    clean, repro runs nothing), and an experiment with an already-run value restores, not trains."""
    dest = repo[0]
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "results", "--allow-empty")
    remote = tmp_path / "remote"
    dvc(repo, "remote", "add", "-f", "-d", "shared", str(remote))
    dvc(repo, "push", "--run-cache")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "remote")

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(dest), str(clone)], tmp_path, repo[1])
    other = (clone, environment(clone))
    dvc(other, "pull", "--run-cache")
    assert "Data and pipelines are up to date" in dvc(other, "status")
    assert stages_run(dvc(other, "repro")) == set()
    # weight_decay 0.001 ran in test_param_change_and_back_restores_from_the_run_cache (or runs here)
    # `dvc push --run-cache` sends every run-cache entry but only the workspace's outputs: a clone
    # cannot restore the other runs (nor any stage with uncached metrics/plots) and runs them again.
    # scripts/push_run_cache.py (make push) also pushes the outputs of every entry; `--pull` on the
    # other side fetches the entries and the outputs of each run it restores.
    dvc(repo, "exp", "run", "-n", "wd", "-S", "train.weight_decay=0.001")
    set_yaml(dest / "params.yaml", {"train.weight_decay": 0.0})
    dvc(repo, "repro")  # back to the committed run: the one to restore is not in the workspace
    pushed = run([sys.executable, str(ROOT / "scripts" / "push_run_cache.py")], dest, repo[1])
    assert re.search(r"[1-9]\d* run-cache entries and [1-9]\d* object\(s\)", pushed), pushed
    output = dvc(other, "exp", "run", "--pull", "-n", "wd-again", "-S", "train.weight_decay=0.001")
    assert stages_run(output) <= {"check_params"}, f"trained on the clone: {stages_run(output)}"
    assert TRAINING <= stages_restored(output)
