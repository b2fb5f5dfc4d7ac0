"""`twostream compare`: exact intervals and tests (twostream.stats), and two runs' predictions read from a
tiny git + DVC repository (commits, the workspace, an experiment), checked against hand-computed figures."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from twostream import console
from twostream.classes import HMDB51_CLASSES
from twostream.stats import accuracy_interval, mcnemar_exact, paired_bootstrap

ROOT = Path(__file__).resolve().parents[1]


# --- twostream.stats -------------------------------------------------------------------------------

def test_exact_interval_matches_the_closed_forms():
    # k = 0 and k = n have closed forms: [0, 1 - 0.025^(1/n)] and [0.025^(1/n), 1]
    assert accuracy_interval(0, 10) == (0.0, pytest.approx(1 - 0.025 ** 0.1))
    assert accuracy_interval(10, 10) == (pytest.approx(0.025 ** 0.1), 1.0)
    # otherwise the bounds solve P(X >= k | low) = 0.025 and P(X <= k | high) = 0.025
    low, high = accuracy_interval(61, 120)
    assert binom.sf(60, 120, low) == pytest.approx(0.025) and binom.cdf(61, 120, high) == pytest.approx(0.025)
    assert (round(low, 2), round(high, 2)) == (0.42, 0.60)  # the example: 0.508 [0.42, 0.60]
    with pytest.raises(ValueError):
        accuracy_interval(3, 2)


def test_mcnemar_is_the_binomial_test_of_the_discordant_videos():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 1], bool)
    assert mcnemar_exact(a, a) == 1.0  # no discordant video
    # 6 videos right in B only, none in A only: p = 2 * 0.5^6
    assert mcnemar_exact(np.zeros(6, bool), np.ones(6, bool)) == pytest.approx(2 * 0.5 ** 6)
    # 1 right in A only, 4 in B only: p = 2 * P(X <= 1), X ~ Bin(5, 1/2) = 2 * 6/32; concordant videos do not count
    a = np.array([1, 0, 0, 0, 0, 1, 0], bool)
    b = np.array([0, 1, 1, 1, 1, 1, 0], bool)
    assert mcnemar_exact(a, b) == pytest.approx(12 / 32) == mcnemar_exact(b, a)
    with pytest.raises(ValueError):
        mcnemar_exact(a, b[:3])


def test_paired_bootstrap_known_answers():
    a = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1], bool)
    assert paired_bootstrap(a, a) == (0.0, 0.0)  # identical runs: no difference in any resample
    assert paired_bootstrap(np.zeros(7, bool), np.ones(7, bool)) == (1.0, 1.0)  # B right everywhere, A nowhere
    # 3 of 10 videos right in B only: a resample's difference is Bin(10, 0.3) / 10, whose 2.5% and 97.5%
    # quantiles are 0 (P(X = 0) = 0.028) and 0.6 (P(X <= 5) = 0.953, P(X <= 6) = 0.989)
    b = a | np.array([0, 1, 0, 0, 1, 1, 0, 0, 0, 0], bool)
    assert paired_bootstrap(a, b) == (0.0, pytest.approx(0.6))


def test_paired_bootstrap_is_the_plain_percentile_bootstrap():
    """Against an independent, unchunked computation with the same generator and seed."""
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.5, rng.random(300) < 0.6
    low, high = paired_bootstrap(a, b, resamples=4000, seed=7)
    draws = np.random.default_rng(7).integers(0, 300, size=(4000, 300))
    means = b[draws].mean(1) - a[draws].mean(1)
    assert (low, high) == (pytest.approx(np.percentile(means, 2.5)), pytest.approx(np.percentile(means, 97.5)))
    assert paired_bootstrap(a, b, resamples=4000, seed=7) == (low, high)  # a fixed seed: the same interval


# --- a tiny repository -----------------------------------------------------------------------------

def _env(root):
    import os
    return {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(ROOT),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def _run(root, *cmd):
    proc = subprocess.run(list(cmd), cwd=root, env=_env(root), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _predictions(right, classes=None, paths=None):
    """A prediction file: video i of class classes[i] predicted right where right[i], else as the next class."""
    n = len(right)
    classes = classes or [HMDB51_CLASSES[i % 12] for i in range(n)]
    paths = paths or [f"{c}/video_{i}.avi" for i, c in enumerate(classes)]
    lines = ["path,actual,predicted," + ",".join(f"p_{c}" for c in HMDB51_CLASSES)]
    for path, actual, ok in zip(paths, classes, right):
        predicted = actual if ok else HMDB51_CLASSES[(HMDB51_CLASSES.index(actual) + 1) % 12]
        probabilities = ["1.000000" if c == predicted else "0.000000" for c in HMDB51_CLASSES]
        lines.append(f"{path},{actual},{predicted}," + ",".join(probabilities))
    return "\n".join(lines) + "\n"


def _write(root, files):
    for name, text in files.items():
        path = root / "plots" / "predictions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# A: 6 of 10 right; B: those 6 and 3 more (9 of 10); flow, video level: B right on 2 that A gets wrong and
# wrong on 2 that A gets right
A = [1, 0, 1, 1, 0, 0, 1, 0, 1, 1]
B = [1, 1, 1, 1, 1, 1, 1, 0, 1, 1]
FLOW_A = [1, 1, 0, 0, 1, 1, 0, 0, 1, 0]
FLOW_B = [0, 0, 1, 1, 1, 1, 0, 0, 1, 0]


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    _run(root, "git", "init", "-q")
    _run(root, sys.executable, "-m", "dvc", "init", "-q")
    _run(root, "git", "commit", "-qm", "dvc init")  # a revision without predictions
    _write(root, {"hmdb51_twostream.csv": _predictions(A), "hmdb51_flow_video.csv": _predictions(FLOW_A)})
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "A")
    _write(root, {"hmdb51_twostream.csv": _predictions(B), "hmdb51_flow_video.csv": _predictions(FLOW_B)})
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "B")
    _run(root, "git", "tag", "b")
    return root


def compare(capsys, *args):
    code = console.main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_two_commits_against_hand_computed_figures(repo, capsys):
    code, out, err = compare(capsys, "HEAD~1", "b", "--repo", str(repo))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("A: HEAD~1   B: b   (same test videos;") and "10,000 resamples, seed 0" in lines[0]
    assert lines[1].split()[:4] == ["model", "(protocol)", "videos", "A"]
    flow, twostream = lines[2], lines[3]  # the model table's order: flow before two-stream
    # 3 videos right in B only: McNemar p = 2 * 0.5^3; bootstrap quantiles of Bin(10, 0.3) / 10: [0, 0.6]
    assert twostream.split("  ")[0] == "HMDB51 Two-stream (one clip)"
    assert twostream.split()[-9:] == ["10", "0.600", "0.900", "+0.300", "[+0.000,", "+0.600]", "0.25", "within",
                                      "noise"]
    # 2 videos each way: p = 1, difference 0; a resample's difference is (plus - minus) / 10 with
    # (plus, minus, 0) ~ Multinomial(10; 0.2, 0.2, 0.6): P(<= -0.5) = 0.011, P(<= -0.4) = 0.039, symmetric
    assert flow.startswith("HMDB51 Optical flow (video)")
    assert flow.split()[-9:-3] == ["10", "0.500", "0.500", "+0.000", "[-0.400,", "+0.400]"]
    assert flow.split()[-3:] == ["1", "within", "noise"]
    # the default: HEAD against the workspace; an identical workspace: no difference, p = 1
    code, out, _ = compare(capsys, "--repo", str(repo))
    assert code == 0 and out.startswith("A: HEAD   B: workspace")
    assert all(line.split()[-6:] == ["+0.000", "[+0.000,", "+0.000]", "1", "within", "noise"]
               for line in out.splitlines()[2:])


def test_compare_a_large_difference_differs(repo, capsys):
    right = [1] * 40 + [0] * 20
    _write(repo, {"hmdb51_twostream.csv": _predictions([0] * 40 + right[40:])})
    _run(repo, "git", "commit", "-qam", "worse")
    _write(repo, {"hmdb51_twostream.csv": _predictions(right)})  # the workspace: 40 more right, none fewer
    code, out, _ = compare(capsys, "--repo", str(repo))
    line = next(line for line in out.splitlines() if "Two-stream" in line)
    assert line.endswith("differs") and f"{2 * 0.5 ** 40:.3g}" in line  # all 40 discordant one way
    assert "only in workspace: hmdb51_flow_video.csv" not in out  # both hold it (HEAD kept the flow file)


def test_compare_reads_an_experiment_by_name(repo, capsys):
    """`dvc exp run` keeps an experiment as a git ref; compare resolves its name through DVC."""
    (repo / "a.csv").write_text(_predictions(A))
    (repo / "b.csv").write_text(_predictions(B))
    (repo / "make.py").write_text("import shutil, yaml\n"
                                  "better = yaml.safe_load(open('params.yaml'))['better']\n"
                                  "shutil.copy('b.csv' if better else 'a.csv', 'plots/predictions/hmdb51_twostream.csv')\n")
    (repo / "params.yaml").write_text("better: false\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    cmd: mkdir -p plots/predictions && python make.py\n    deps: [make.py, a.csv, b.csv]\n"
        "    params: [better]\n    plots:\n      - plots/predictions:\n          cache: false\n")
    _run(repo, sys.executable, "-m", "dvc", "repro", "-q")
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "pipeline")
    _run(repo, sys.executable, "-m", "dvc", "exp", "run", "-q", "-n", "better", "-S", "better=true")
    code, out, err = compare(capsys, "HEAD", "better", "--repo", str(repo))
    assert code == 0, err
    line = next(line for line in out.splitlines() if "Two-stream" in line)
    assert line.split()[-9:-3] == ["10", "0.600", "0.900", "+0.300", "[+0.000,", "+0.600]"]


@pytest.mark.parametrize("args, message", [
    (["nosuch"], r"^error: nosuch: not a git revision, branch, tag or experiment of .*; see `git log`"),
    (["HEAD~2", "HEAD"], r"^error: HEAD~2: no per-video predictions \(plots/predictions/\*\.csv\); run `dvc repro`"),
])
def test_bad_revisions_end_in_one_line(repo, capsys, args, message):
    code, out, err = compare(capsys, *args, "--repo", str(repo))
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert __import__("re").match(message, err), err


def test_different_test_sets_are_refused_in_one_line(repo, capsys):
    # other videos (another fold): the paths differ
    _write(repo, {"hmdb51_twostream.csv": _predictions(B, paths=[f"x/other_{i}.avi" for i in range(10)])})
    code, _, err = compare(capsys, "--repo", str(repo))
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: hmdb51_twostream.csv: HEAD and workspace have different test sets (10 and 10 "
                          "videos, 20 in only one")
    # the same names, other classes (other data)
    classes = [HMDB51_CLASSES[(i + 1) % 12] for i in range(10)]
    paths = [f"{HMDB51_CLASSES[i % 12]}/video_{i}.avi" for i in range(10)]
    _write(repo, {"hmdb51_twostream.csv": _predictions(B, classes=classes, paths=paths)})
    code, _, err = compare(capsys, "--repo", str(repo))
    assert code == 1 and "have different test sets (clap/video_0.avi is clap in one, climb in the other)" in err
    # the same names and classes, but dvc.lock records other raw videos (e.g. another synthetic seed)
    _write(repo, {"hmdb51_twostream.csv": _predictions(B)})
    lock = "schema: '2.0'\nstages:\n  download:\n    cmd: x\n    outs:\n    - path: data/raw/hmdb51\n      md5: {}.dir\n"
    (repo / "dvc.lock").write_text(lock.format("aaa"))
    _run(repo, "git", "add", "-A")
    _run(repo, "git", "commit", "-qm", "lock")
    (repo / "dvc.lock").write_text(lock.format("bbb"))
    code, _, err = compare(capsys, "--repo", str(repo))
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("error: dvc.lock: HEAD and workspace test on different data (data/raw/hmdb51: aaa.dir vs "
                          "bbb.dir)")
    (repo / "dvc.lock").write_text(lock.format("aaa"))
    assert compare(capsys, "--repo", str(repo))[0] == 0


def test_a_damaged_prediction_file_names_the_revision_file_and_line(repo, capsys):
    _write(repo, {"hmdb51_twostream.csv": "path,actual,predicted\nv1.avi,clap,applauding\n"})
    code, _, err = compare(capsys, "--repo", str(repo))
    assert code == 1
    assert err == ("error: workspace:plots/predictions/hmdb51_twostream.csv:2: predicted 'applauding' is not a "
                   "hmdb51 class; re-run the evaluate stage there\n")


# --- the prediction files' names ---------------------------------------------------------------------

def test_prediction_file_names_say_model_and_protocol():
    from twostream.predictions import describe, file_name, order, position_file_name
    assert describe(file_name("hmdb51_flow", video=True)).protocol == "video"
    assert describe(file_name("hmdb51_flow")).label == "HMDB51 Optical flow (one clip)"
    assert describe(file_name("stanford40_frames")).label == "Stanford 40 Frames (images)"
    assert describe(position_file_name("first")).label == "HMDB51 Frames at first (one clip)"
    # not prediction files: no video level of still images, unknown names, other extensions
    assert describe("stanford40_frames_video.csv") is None
    assert describe("frame_position_centre.csv") is None and describe("notes.txt") is None
    names = ["frame_position_last.csv", "hmdb51_twostream_video.csv", "README.md", "hmdb51_twostream.csv",
             "stanford40_frames.csv", "frame_position_first.csv"]
    assert order(names) == ["stanford40_frames.csv", "hmdb51_twostream.csv", "hmdb51_twostream_video.csv",
                            "frame_position_first.csv", "frame_position_last.csv"]
