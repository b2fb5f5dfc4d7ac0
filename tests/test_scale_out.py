"""Scaling out: data-parallel training (`ddp`), sharded flow (`shard`) and DVC's experiment queue
(`queue`), on the CPU with gloo and 2 processes (`-k ddp`, `-k shard`, `-k queue` select them).

What is tested here is one machine, several processes. Multi-node runs (torchrun's c10d
rendezvous) and the NCCL/one-GPU-per-process path are documented in docs/scaling.md only.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch.utils.data import DistributedSampler

from helpers import TINY, run, set_yaml, stages_run, terminal_sigint
from twostream import distributed, launch
from twostream.checkpoint import load_checkpoint, load_model
from twostream.classes import HMDB51_CLASSES
from twostream.datasets import FlowDataset, SeededDataset, SeededSampler, TwoStreamDataset, hmdb51_subset
from twostream.errors import ParamsError
from twostream.params import load_runtime
from twostream.train import check_batch_split, make_loader, validate

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = dataclasses.replace(load_runtime(ROOT / "runtime.yaml"), device="cpu", loader_workers=0, pin_memory=False,
                              progress=False)


def env(**extra):
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path, **extra}


def python(*args, cwd=ROOT, timeout=600, **extra):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env(**extra), capture_output=True,
                          text=True, timeout=timeout)


def runtime_file(path, **changes):
    """A copy of runtime.yaml with `changes` (CPU, no progress bars)."""
    settings = yaml.safe_load((ROOT / "runtime.yaml").read_text())
    settings.update({"device": "cpu", "progress": False, **changes})
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


# --- pieces, in one process ---------------------------------------------------------------

def test_shard_range_is_contiguous_and_covers_every_row():
    for n in (0, 1, 5, 7, 8, 101):
        for world in (1, 2, 3, 8):
            ranges = [distributed.shard_range(n, r, world) for r in range(world)]
            assert ranges[0][0] == 0 and ranges[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))  # contiguous, in rank order
            sizes = [stop - start for start, stop in ranges]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert distributed.shard_range(7, 0, 2) == (0, 4) and distributed.shard_range(7, 1, 2) == (4, 7)


@pytest.mark.parametrize("n, world", [(37, 2), (37, 3), (36, 4), (2, 3)])
def test_ddp_gathered_validation_is_every_sample_once_in_order(n, world):
    """DistributedSampler(shuffle=False) deals rows rank, rank + W, ... padded with the first rows;
    `in_dataset_order` gives back the N rows in order without the padding."""
    shards = [torch.tensor(list(DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=False)))
              for r in range(world)]
    assert sum(len(s) for s in shards) >= n and len({len(s) for s in shards}) == 1  # padded to equal lengths
    assert distributed.in_dataset_order(shards, n).tolist() == list(range(n))


def test_ddp_each_process_loads_its_share_of_every_global_batch(monkeypatch):
    """Global batch k of W processes (each batch_size / W) holds the samples of batch k of one process,
    with the same per-sample seeds: the same augmented samples take each optimizer step."""
    class Indexed(SeededDataset):
        def item(self, index):
            return index

    data = Indexed(np.zeros(64, int))

    def batches(world, rank):
        monkeypatch.setattr(distributed, "world_size", lambda: world)
        monkeypatch.setattr(distributed, "rank", lambda: rank)
        loader = make_loader(data, 16, RUNTIME, shuffle=True, seed=5)
        assert isinstance(loader.sampler, SeededSampler) and loader.batch_size == 16 // world
        loader.sampler.set_epoch(3)
        return [batch[0].tolist() for batch in loader]

    whole = batches(1, 0)
    shares = [batches(2, r) for r in (0, 1)]
    assert len(whole) == len(shares[0]) == len(shares[1]) == 4
    for k, batch in enumerate(whole):
        assert sorted(shares[0][k] + shares[1][k]) == sorted(batch)


def test_ddp_batch_must_split_evenly():
    check_batch_split(32, 4)
    with pytest.raises(ParamsError, match=r"train.batch_size \(32\) is not divisible by the 3 training processes "
                                          r"\(runtime.yaml torchrun_processes"):
        check_batch_split(32, 3)


def test_ddp_launcher_reads_nproc_from_the_stage_runtime_file():
    assert launch.runtime_file(["--flow", "x"]) == "runtime.yaml"
    assert launch.runtime_file(["--runtime", "r.yaml", "--out", "m"]) == "r.yaml"
    assert launch.runtime_file(["--runtime=s.yaml"]) == "s.yaml"
    assert launch.torchrun_args(4, "stages/hmdb51_flow.py", ["--flow", "data/flow"]) == [
        "--standalone", "--nproc_per_node=4", "stages/hmdb51_flow.py", "--flow", "data/flow"]
    assert launch.exit_status([1, -15]) == 1 and launch.exit_status([-15, 130]) == 130


def test_ddp_a_peer_gone_is_one_line_but_other_runtime_errors_keep_their_traceback(monkeypatch, capsys):
    from twostream.cli import run_stage, stage_parser

    def stage(error):
        def main(args, params, runtime):
            raise error
        monkeypatch.setattr(sys, "argv", ["stage.py"])
        run_stage(main, stage_parser(None))

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(SystemExit) as exit_:
        stage(RuntimeError("[gloo/transport/tcp/pair.cc:561] Connection closed by peer [127.0.0.1]:1234"))
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "error: [rank 0] stopped: another process of this run ended (see its message)\n"
    with pytest.raises(RuntimeError, match="a bug"):
        stage(RuntimeError("a bug"))
    monkeypatch.setenv("WORLD_SIZE", "1")  # one process: no peers, a RuntimeError is a bug
    with pytest.raises(RuntimeError, match="Connection closed by peer"):
        stage(RuntimeError("Connection closed by peer"))


SHOW_WORLD = """
import os, sys
print("world", os.environ.get("WORLD_SIZE"), "argv", sys.argv[1:])
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def test_ddp_launcher_with_one_process_runs_plain_python(tmp_path):
    script = tmp_path / "show.py"
    script.write_text(SHOW_WORLD)
    runtime = runtime_file(tmp_path / "r.yaml", torchrun_processes=1)
    proc = python("-m", "twostream.launch", script, "--runtime", runtime, "--x", "1", EXIT="3")
    assert proc.returncode == 3  # the script's own status: the launcher replaced itself with it
    assert proc.stdout == f"world None argv ['--runtime', '{runtime}', '--x', '1']\n"
    bad = python("-m", "twostream.launch", script, "--runtime", tmp_path / "missing.yaml")
    assert bad.returncode == 1 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1




def test_the_launcher_loads_no_torch_before_it_hands_over_to_a_one_process_stage():
    # every launched stage pays for its own torch import; the launcher must not pay for one more
    proc = python("-c", "import sys, twostream.launch; print(sorted(m for m in sys.modules if m.split('.')[0] in "
                        "('torch', 'torchvision', 'numpy')))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"


# --- several processes (torchrun, gloo) ---------------------------------------------------

FIT_WORKER = """
import dataclasses, sys
import torch
from torch import nn
from torch.utils.data import TensorDataset
from twostream import distributed
from twostream.params import StageTrainParams, StepParams, load_params, load_runtime
from twostream.train import fit, make_loader, seed_everything

params = load_params({root!r} + "/params.yaml")
runtime = dataclasses.replace(load_runtime({root!r} + "/runtime.yaml"), device="cpu", loader_workers=0, progress=False)

def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long())

stage = StageTrainParams(epochs=4, lr=1e-2, augment=False, step=StepParams(warmup_epochs=0, step_size=2, gamma=0.5))
with distributed.process_group("cpu") as device:
    seed_everything(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))  # no BatchNorm, no dropout
    train = make_loader(data(64, 0), 16, runtime, shuffle=True, seed=0)
    val = make_loader(data(37, 1), 16, runtime, shuffle=False, seed=0)  # 37: the last shard is padded
    result = fit(model, train, val, stage, dataclasses.replace(params.train, batch_size=16), device,
                 progress=False)
    if distributed.is_main():
        torch.save({{"state": model.state_dict(), "history": [dataclasses.asdict(r) for r in result.history],
                    "world": distributed.world_size()}}, sys.argv[1])
"""


@pytest.mark.slow
def test_ddp_fit_on_two_processes_matches_one_process(tmp_path):
    """Without BatchNorm, DDP's averaged gradients over two halves of every global batch are the one
    process's gradients: the same weights and figures up to float32 rounding (measured: 3e-8)."""
    worker = tmp_path / "fit.py"
    worker.write_text(FIT_WORKER.format(root=str(ROOT)))
    one = python(worker, tmp_path / "one.pt")
    assert one.returncode == 0, one.stderr[-3000:]
    two = python("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", worker, tmp_path / "two.pt")
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert (a["world"], b["world"]) == (1, 2)
    for key, value in a["state"].items():
        torch.testing.assert_close(b["state"][key], value, rtol=0, atol=1e-6)
    for x, y in zip(a["history"], b["history"], strict=True):
        assert x["val_accuracy"] == y["val_accuracy"] and x["train_accuracy"] == y["train_accuracy"]
        assert x["best"] == y["best"]
        assert y["val_loss"] == pytest.approx(x["val_loss"], abs=1e-6)
        assert y["train_loss"] == pytest.approx(x["train_loss"], abs=1e-6)


FAILING_STAGE = """
import os
from twostream.cli import run_stage, stage_parser
from twostream.distributed import barrier, process_group, rank
from twostream.errors import InputError

def main(args, params, runtime):
    with process_group("cpu"):
        if rank() == 1:
            raise InputError("data/x.npy: broken; re-run the stage that writes it")
        barrier()

run_stage(main, stage_parser(None))
"""


@pytest.mark.slow
def test_ddp_a_failing_process_ends_the_run_with_one_line_each(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(FAILING_STAGE)
    runtime = runtime_file(tmp_path / "r.yaml", torchrun_processes=2)
    proc = python("-m", "twostream.launch", script, "--runtime", runtime)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert "error: [rank 1] data/x.npy: broken; re-run the stage that writes it" in errors
    assert errors[-1] == f"error: {script} failed in 2 of its 2 processes (their messages are above)"
    # rank 0, waiting at the barrier, either sees its peer go (one line) or is stopped by torchrun first
    assert set(errors[:-1]) - {"error: [rank 1] data/x.npy: broken; re-run the stage that writes it"} <= {
        "error: [rank 0] stopped: another process of this run ended (see its message)"}


SLEEPING_STAGE = """
import time
from pathlib import Path
from twostream.cli import run_stage, stage_parser
from twostream.distributed import process_group, rank

def main(args, params, runtime):
    with process_group("cpu"):
        (Path(args.runtime).parent / f"started{rank()}").touch()
        time.sleep(120)

run_stage(main, stage_parser(None))
"""


@pytest.mark.slow
def test_ddp_ctrl_c_stops_every_process_with_status_130(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text(SLEEPING_STAGE)
    runtime = runtime_file(tmp_path / "r.yaml", torchrun_processes=2)
    proc = subprocess.Popen([sys.executable, "-m", "twostream.launch", str(script), "--runtime", str(runtime)],
                            cwd=ROOT, env=env(), stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=terminal_sigint)
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"started{r}").exists() for r in (0, 1)):
            assert proc.poll() is None and time.monotonic() < deadline, "the processes did not start"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert {e for e in errors if e.startswith("error: [rank")} <= {
        f"error: [rank {r}] interrupted (Ctrl-C); no partial output is left: run the stage again" for r in (0, 1)}
    assert errors[-1].startswith("error: interrupted (SIGINT); the 2 processes of")


TEST_CLIPS = 3  # test clips per video: 3 rows per test video, sharded unevenly over 2 processes


def write_flow_frames(root: Path, size: int, counts: dict[str, int]) -> Path:
    """A sample_frames-like directory: moving smooth textures, 9 frames per clip, and manifests."""
    frames = root / "frames"
    frames.mkdir()
    rng = np.random.default_rng(1)
    for subset, n in counts.items():
        big = rng.integers(0, 256, (n, 1, size + 40, size + 40, 3), dtype=np.uint8).astype(np.float32)
        big = torch.nn.functional.avg_pool2d(torch.from_numpy(big[:, 0]).permute(0, 3, 1, 2), 5, 1, 2)
        big = big.permute(0, 2, 3, 1).numpy().astype(np.uint8)
        steps = rng.integers(0, 4, (n, 9, 2))
        clips = np.stack([[big[i, 20 + dy * k // 2:20 + dy * k // 2 + size, 20 + dx * k // 2:20 + dx * k // 2 + size]
                           for k, (dx, dy) in enumerate(steps[i])] for i in range(n)])
        np.save(frames / f"hmdb51_{subset}_flow_frames.npy", np.ascontiguousarray(clips))
        if subset == "test":  # video-level testing: TEST_CLIPS stacks per test video (the clips reversed, shifted),
            # the middle one the one-clip frames themselves, as sample_frames writes them for an odd K
            others = [np.roll(clips[:, ::-1], k, axis=2) for k in range(TEST_CLIPS)]
            others[TEST_CLIPS // 2] = clips
            np.save(frames / "hmdb51_test_clip_flow_frames.npy", np.ascontiguousarray(np.stack(others, 1)))
        labels = [i % len(HMDB51_CLASSES) for i in range(n)]
        pd.DataFrame({"path": [f"{HMDB51_CLASSES[k]}/{subset}{i}.avi" for i, k in enumerate(labels)],
                      "label": labels, "class": [HMDB51_CLASSES[k] for k in labels]}).to_csv(
            frames / f"hmdb51_{subset}.csv", index=False)
    return frames


def flow_run(tmp_path, method, size, torchrun_processes, counts):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["image"]["size"] = size
    params["flow"].update(method=method, pretrained=False, raft_updates=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    frames = tmp_path / "frames"
    if not frames.exists():
        write_flow_frames(tmp_path, size, counts)
    runtime = runtime_file(tmp_path / f"runtime{torchrun_processes}.yaml", torchrun_processes=torchrun_processes, flow_batch_size=3)
    out = tmp_path / f"flow{torchrun_processes}"
    started = time.perf_counter()
    proc = python("-m", "twostream.launch", ROOT / "stages" / "flow.py", "--frames", frames, "--out", out,
                  "--params", tmp_path / "params.yaml", "--runtime", runtime)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"hmdb51_{s}.{ext}" for s in counts for ext in ("npy", "csv")]
        + ["hmdb51_test_clips.npy", "flow.json"])  # no leftovers, no shard files
    # the middle test clip's stacks are the one-clip test stacks, copied (each process its rows), not computed
    assert "3 clips per video (the middle one's flow: the one clip's)" in proc.stderr
    return out, time.perf_counter() - started


@pytest.mark.slow
def test_shard_flow_dis_on_two_processes_is_bit_identical(tmp_path):
    counts = {"train": 7, "val": 3, "test": 1}  # uneven shards; one process gets no test clip
    one, _ = flow_run(tmp_path, "dis", 32, 1, counts)
    two, _ = flow_run(tmp_path, "dis", 32, 2, counts)
    for name in sorted(p.name for p in one.iterdir()):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert np.load(one / "hmdb51_train.npy").shape == (7, 8, 32, 32, 3)
    test_clips = np.load(one / "hmdb51_test_clips.npy")
    assert test_clips.shape == (1, TEST_CLIPS, 8, 32, 32, 3)
    np.testing.assert_array_equal(test_clips[:, TEST_CLIPS // 2], np.load(one / "hmdb51_test.npy"))
    assert not np.array_equal(test_clips[:, 0], test_clips[:, TEST_CLIPS // 2])


@pytest.mark.slow
def test_shard_flow_raft_small_on_two_processes_matches_one_process(tmp_path):
    """RAFT with random weights (the same in every process). CPU convolutions round differently with
    the thread count (torchrun gives each process its share of the cores) and the batch composition
    (flow_batch_size 3: batches cross videos, and a shard boundary changes them): measured, 1 pixel
    value in ~25,000 is off by one level. Tolerance: no pixel off by more than 1, under 0.1% of them off."""
    counts = {"train": 3, "val": 1, "test": 1}
    one, _ = flow_run(tmp_path, "raft_small", 128, 1, counts)
    two, _ = flow_run(tmp_path, "raft_small", 128, 2, counts)
    for name in [*(f"hmdb51_{subset}" for subset in counts), "hmdb51_test_clips"]:
        a = np.load(one / f"{name}.npy").astype(int)
        b = np.load(two / f"{name}.npy").astype(int)
        assert a.shape == b.shape and a.any()
        difference = np.abs(a - b)
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3, (name, difference.max(),
                                                                          (difference > 0).mean())
    for subset in counts:
        assert (one / f"hmdb51_{subset}.csv").read_text() == (two / f"hmdb51_{subset}.csv").read_text()


# --- the pipeline: DVC runs the stages on 2 processes; DVC's experiment queue ------------------

@pytest.fixture(scope="module")
def results(repo):
    """The tiny pipeline run once on one process (conftest's `repo`, one for this module), committed."""
    dest, env_ = repo[0], repo[1]
    run(["git", "add", "-A"], dest, env_)
    run(["git", "commit", "-qm", "one-process results"], dest, env_)
    return repo


def dvc(repo_, *args):
    return run([sys.executable, "-m", "dvc", *args], repo_[0], repo_[1])


def restore(repo_):
    """Back to the committed one-process results (tracked files, then the DVC outputs they name)."""
    run(["git", "checkout", "HEAD", "--", "."], repo_[0], repo_[1])  # dvc repro stages dvc.lock: not the index
    dvc(repo_, "checkout", "--force")
    assert "Data and pipelines are up to date" in dvc(repo_, "status")


def outputs(dest):
    """Every file under models/ and plots/training/ (hidden ones too: leftovers would show)."""
    return sorted(str(p.relative_to(dest)) for d in ("models", "plots/training") for p in (dest / d).rglob("*")
                  if p.is_file())


def val_set(dest, stage):
    flow = dest / "data" / "flow"
    if stage == "hmdb51_flow":
        return FlowDataset(hmdb51_subset(None, flow, "val"))
    return TwoStreamDataset(hmdb51_subset(dest / "data" / "frames", flow, "val"), None, "middle")


@pytest.mark.slow
@pytest.mark.parametrize("stage, model", [("hmdb51_flow", "hmdb51_flow"), ("hmdb51_twostream", "hmdb51_twostream")])
def test_ddp_training_stage_runs_on_two_processes_in_dvc_repro(results, stage, model):
    dest = results[0]
    path = dest / "models" / f"{model}.pt"
    one = load_checkpoint(path)
    before = outputs(dest)
    set_yaml(dest / "runtime.yaml", {"torchrun_processes": 2})
    try:
        assert "Data and pipelines are up to date" in dvc(results, "status")  # torchrun_processes re-runs nothing
        output = dvc(results, "repro", "-f", "-s", stage)
        assert stages_run(output) == {stage}
        assert f"{stage}: " in output and "2 process(es)" in output, output[-3000:]
        assert outputs(dest) == before  # one checkpoint, one curves directory, nothing else
        two = load_checkpoint(path)
        assert one["state_dict"].keys() == two["state_dict"].keys()
        assert any(not torch.equal(one["state_dict"][k], two["state_dict"][k]) for k in one["state_dict"])
        # the recorded validation figures are those of the saved model, on every val sample once
        best = two["history"][two["best_epoch"] - 1]
        net, _ = load_model(path)
        loader = make_loader(val_set(dest, stage), 16, RUNTIME, shuffle=False, seed=0)
        loss, accuracy = validate(net, loader, torch.device("cpu"))
        assert best["val_accuracy"] == accuracy
        assert best["val_loss"] == pytest.approx(loss, rel=1e-5)
        # the same training, split: params, epochs and schedule as on one process. The figures differ:
        # on the CPU each process normalises with the BatchNorm statistics of its half of every batch
        # (SyncBatchNorm is GPU-only), which after one tiny epoch moves the val loss a lot (measured:
        # hmdb51_flow 6.74 on one process, 3.58 on two; accuracy 1/12 both). Without BatchNorm they
        # agree to 1e-6: test_ddp_fit_on_two_processes_matches_one_process.
        assert two["params"] == one["params"] and two["epochs"] == one["epochs"]
        assert [h["lr"] for h in two["history"]] == [h["lr"] for h in one["history"]]
    finally:
        restore(results)


@pytest.mark.slow
def test_queue_runs_two_experiments_in_parallel(results):
    """`dvc exp run --queue` with a sweep, then `--run-all -j 2`: two experiments at once, each in its own
    temporary copy of the repository, with the workspace's runtime.yaml (here 2 processes per training
    stage) and the stages' relative paths; both end up in `dvc exp show` with their own params and metrics."""
    dest = results[0]
    set_yaml(dest / "runtime.yaml", {"torchrun_processes": 2})
    try:
        queued = dvc(results, "exp", "run", "--queue", "-S", "hmdb51_twostream.epochs=2,3")
        assert queued.count("Queued experiment") == 2, queued
        output = dvc(results, "exp", "run", "--run-all", "-j", "2")
        assert output.count("Running stage 'hmdb51_twostream'") == 2 and "2 process(es)" in output, output[-3000:]
        assert "Failed to reproduce" not in output
        shown = json.loads(dvc(results, "exp", "show", "--json"))
        found = {}
        for epochs in (2, 3):
            experiment = next((e for e in _experiments(shown) if e["data"]["params"]["params.yaml"]["data"]
                               ["hmdb51_twostream"]["epochs"] == epochs), None)
            assert experiment is not None, f"no experiment with hmdb51_twostream.epochs={epochs}"
            metrics = experiment["data"]["metrics"]
            assert metrics["metrics/hmdb51_twostream.json"]["data"]["epochs"] == epochs
            assert metrics["metrics/hmdb51_flow.json"]["data"]["epochs"] == TINY["hmdb51_flow.epochs"]  # restored
            found[epochs] = experiment["name"]
        assert len(set(found.values())) == 2
        assert "Queued" not in dvc(results, "queue", "status")
    finally:
        run([sys.executable, "-m", "dvc", "queue", "stop"], dest, results[1], check=False)
        restore(results)


def _experiments(node):
    """Every experiment (a mapping with "name" and "data") in `dvc exp show --json` output."""
    if isinstance(node, dict):
        if "name" in node and isinstance(node.get("data"), dict) and "params" in node["data"]:
            yield node
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            yield from _experiments(child)
