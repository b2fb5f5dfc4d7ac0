"""scripts/seed_table.py: the demo's seed table, read from experiment refs through git (a tiny repository)."""
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import seed_table  # noqa: E402

MODELS = ("hmdb51_frames", "hmdb51_flow", "hmdb51_twostream", "hmdb51_late_fusion")


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def write_run(repo: Path, seed: int, right: dict[str, list[bool]]) -> None:
    """params.yaml with `seed`, and for each model confusion rows over clap, wave, run and jump test videos:
    video k of class c is predicted right where right[model][k] is true, else as its pair's other class."""
    (repo / "params.yaml").write_text(f"seed: {seed}\n")
    twin = {"clap": "wave", "wave": "clap", "run": "jump", "jump": "run"}
    (repo / "plots" / "confusion").mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        lines = ["actual,predicted"]
        for k, cls in enumerate(["clap", "wave", "run", "jump"]):
            lines.append(f"{cls},{cls if right[model][k] else twin[cls]}")
        (repo / "plots" / "confusion" / f"{model}.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "t")
    (repo / "README").write_text("baseline\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    base = git(repo, "rev-parse", "HEAD")
    runs = {0: {"hmdb51_frames": [True, False, False, False], "hmdb51_flow": [True, True, True, False],
                "hmdb51_twostream": [True, True, True, True], "hmdb51_late_fusion": [True, True, False, False]},
            1: {"hmdb51_frames": [False, False, True, True], "hmdb51_flow": [True, True, True, True],
                "hmdb51_twostream": [True, True, True, False], "hmdb51_late_fusion": [False, False, False, False]}}
    for seed, right in runs.items():  # an experiment: a commit on top of the baseline, kept only as a ref
        git(repo, "checkout", "-q", "--detach", base)
        write_run(repo, seed, right)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"seed {seed}")
        git(repo, "update-ref", f"refs/exps/{base[:2]}/{base[2:]}/exp-{seed}", "HEAD")
    git(repo, "checkout", "-q", base)
    return repo


def test_reads_every_experiment_of_head_and_averages_them(repo, capsys):
    assert len(seed_table.experiments(repo)) == 2
    run = seed_table.read_revision(repo, seed_table.experiments(repo)[0])
    assert run["seed"] == 0 and run["test videos"] == 4
    assert (run["frames"], run["flow"], run["two-stream"], run["late fusion"]) == (0.25, 0.75, 1.0, 0.5)
    assert run["clap/wave frames"] == 0.5 and run["clap/wave flow"] == 1.0 and run["run/jump flow"] == 0.5
    assert run["drink/smoke frames"] != run["drink/smoke frames"]  # no test videos of the pair: NaN
    assert seed_table.main(["--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| 0 | 4 | 0.250 | 0.750 | 1.000 | 0.500 | 0.50 / 1.00 | 0.00 / 0.50 |")
    assert rows[2].startswith("| 1 | 4 | 0.500 | 1.000 | 0.750 | 0.000 |")
    # mean ± std (ddof 1) of 0.25 and 0.5: 0.375 ± 0.177; two-stream minus flow: (0.25 - 0.25) / 2 = 0
    assert rows[3].startswith("| mean ± std |  | 0.375 ± 0.177 | 0.875 ± 0.177 | 0.875 ± 0.177 | 0.250 ± 0.354 |")
    assert "frames +0.500 (smallest +0.250), flow +0.000 (smallest -0.250), late fusion +0.625" in out


def test_a_revision_without_results_is_one_line(repo, capsys):
    assert seed_table.main(["--repo", str(repo), "HEAD"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: HEAD: no committed results") and err.count("\n") == 1
    git(repo, "update-ref", "-d", git(repo, "for-each-ref", "--format=%(refname)", "refs/exps").split()[0])
    git(repo, "update-ref", "-d", git(repo, "for-each-ref", "--format=%(refname)", "refs/exps").split()[0])
    assert seed_table.main(["--repo", str(repo)]) == 1
    assert "no experiments of HEAD" in capsys.readouterr().err
