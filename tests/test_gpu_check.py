"""The GPU check (benchmarks/gpu_check.sh): its bad-input lines, its wheels plan, and the whole check on
the CPU at tiny sizes (--smoke) with only the GPU image's packages and the carried wheels importable."""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
IMAGE = ROOT / "benchmarks" / "gpu_image_packages.txt"
PINS = ROOT / "benchmarks" / "gpu_wheels.txt"
BLOCKER = Path(__file__).resolve().parent / "fixtures" / "gpu_image"


def load_module():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


gpu_check = load_module()


def environment(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra})
    return env


def check(args, env=None, timeout=600):
    return subprocess.run([str(SCRIPT), *args], cwd=ROOT, env=env or environment(), capture_output=True, text=True,
                          timeout=timeout)


def one_error_line(proc) -> str:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: gpu_check: "), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    return lines[0]


def names(path: Path) -> list[str]:
    return [gpu_check.normalize(line.split("==")[0]) for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")]


# --- versions


@pytest.mark.parametrize("torch_version, torchvision_version", [
    ("2.11.0+cu130", "0.26.0+cu130"), ("2.4.0", "0.19.0"), ("2.4.0a0+git1234", "0.19.0a0"), ("3.0.1", "1.0.0")])
def test_supported_versions_pass(torch_version, torchvision_version):
    gpu_check.check_versions(torch_version, torchvision_version)


@pytest.mark.parametrize("torch_version, torchvision_version, message", [
    ("2.3.1+cu121", "0.19.0", "torch 2.3.1+cu121 is older than 2.4: upgrade torch to >= 2.4"),
    ("1.13.0", "0.14.0", "torch 1.13.0 is older than 2.4"),
    ("2.11.0", "0.18.1", "torchvision 0.18.1 is older than 0.19: upgrade torchvision"),
    (None, "0.19.0", "torch is not installed for"),
])
def test_old_or_missing_torch_is_refused(torch_version, torchvision_version, message):
    with pytest.raises(gpu_check.GpuCheckError, match=re.escape(message)):
        gpu_check.check_versions(torch_version, torchvision_version)


def test_old_torch_ends_the_check_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "torch_versions", lambda: ("2.3.1", "0.18.1"))
    assert gpu_check.main(["--smoke", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err == "error: gpu_check: torch 2.3.1 is older than 2.4: upgrade torch to >= 2.4 (the check uses no " \
                  "newer API than torch 2.4 / torchvision 0.19)\n"
    assert not (tmp_path / "out").exists()


# --- bad input through the script


def test_no_cuda_device_is_one_line(tmp_path):
    proc = check(["--out", str(tmp_path / "out")], environment(CUDA_VISIBLE_DEVICES=""))
    line = one_error_line(proc)
    assert "no CUDA device" in line and "add --smoke" in line
    assert not (tmp_path / "out").exists()


def test_missing_wheel_is_one_line(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text("# a package this machine lacks\ntwostream-absent-package==1.0\n")
    (tmp_path / "wheels").mkdir()
    proc = check(["--smoke", "--out", str(tmp_path / "out"), "--wheels", str(tmp_path / "wheels"),
                  "--requirements", str(pins)])
    line = one_error_line(proc)
    assert "no wheel of twostream-absent-package==1.0" in line and "make gpu-wheels" in line
    assert not (tmp_path / "out").exists()


def test_more_than_60_mib_of_wheels_is_one_line(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with open(wheels / "big-1.0-py3-none-any.whl", "wb") as fh:  # sparse: no 61 MiB written
        fh.truncate(61 * 2**20)
    proc = check(["--smoke", "--out", str(tmp_path / "out"), "--wheels", str(wheels)])
    line = one_error_line(proc)
    assert "61.0 MiB of wheels, more than the 60 MiB allowed" in line and "make gpu-wheels" in line


def test_check_wheels_names_a_missing_pin(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    pins = gpu_check.read_requirements(PINS)
    for name, version in pins:
        (wheels / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"x")
    proc = check(["--check-wheels", "--wheels", str(wheels)])
    assert proc.returncode == 0 and f"{len(pins)} wheels" in proc.stdout, proc.stdout + proc.stderr
    name, version = pins[0]
    next(wheels.glob(f"{name.replace('-', '_')}-*")).unlink()
    line = one_error_line(check(["--check-wheels", "--wheels", str(wheels)]))
    assert f"no wheel of {name}=={version}" in line


# --- the wheels plan


def test_only_missing_packages_are_installed(tmp_path):
    for name in ("alpha-1.0-py3-none-any.whl", "beta_pkg-2.0-cp312-cp312-manylinux_2_28_x86_64.whl"):
        (tmp_path / name).write_bytes(b"x")
    pins = [("alpha", "1.0"), ("beta.pkg", "2.0")]
    assert gpu_check.plan_wheels(pins, tmp_path, installed=lambda name: None) == [
        tmp_path / "alpha-1.0-py3-none-any.whl", tmp_path / "beta_pkg-2.0-cp312-cp312-manylinux_2_28_x86_64.whl"]
    assert gpu_check.plan_wheels(pins, tmp_path, installed=lambda name: "2.0" if name == "beta.pkg" else None) == [
        tmp_path / "alpha-1.0-py3-none-any.whl"]
    assert gpu_check.plan_wheels(pins, tmp_path / "absent", installed=lambda name: "1") == []
    with pytest.raises(gpu_check.GpuCheckError, match=r"no wheel of alpha==1\.1"):
        gpu_check.plan_wheels([("alpha", "1.1")], tmp_path, installed=lambda name: None)


def test_wheels_are_pinned_as_in_the_lock_file_and_leave_out_the_image():
    lock = {gpu_check.normalize(n): v for n, v in
            (line.split("==") for line in (ROOT / "requirements.lock").read_text().split() if "==" in line)}
    pins = gpu_check.read_requirements(PINS)
    assert pins and all(lock.get(gpu_check.normalize(name)) == version for name, version in pins), pins
    image = set(names(IMAGE))
    assert {"torch", "torchvision", "numpy", "pandas", "opencv-python-headless"} <= image
    assert not image & set(names(PINS))


# --- pieces of the run


def test_stage_commands_follow_dvc_yaml(tmp_path):
    from twostream.params import read_yaml

    raw = read_yaml(ROOT / "params.yaml")
    commands = list(gpu_check.stage_commands(ROOT / "dvc.yaml", raw, tmp_path, tmp_path / "p.yaml", tmp_path / "r.yaml"))
    assert [name for name, _ in commands] == list(read_yaml(ROOT / "dvc.yaml")["stages"])
    for name, argv in commands:
        assert argv[0] == sys.executable and argv[-4:] == ["--params", str(tmp_path / "p.yaml"), "--runtime",
                                                            str(tmp_path / "r.yaml")]
        assert not [a for a in argv if a.startswith(("data/", "models/", "metrics", "plots")) or "${" in a], argv
    fusion = dict(commands)["hmdb51_twostream"]
    assert fusion[fusion.index("--spatial") + 1] == str(tmp_path / "models" / "hmdb51_frames" / "middle.pt")


def test_timings_from_a_stage_log():
    log = """2026-01-01 10:00:00,000 INFO twostream.train: hmdb51_frames: 5612204 parameters, 108 train / 12 val samples
2026-01-01 10:00:05,000 INFO twostream.train: epoch 1/2 lr 1.00e-04 train loss 2.5 acc 0.1 | val loss 2.5 acc 0.0
2026-01-01 10:00:07,250 INFO twostream.train: epoch 2/2 lr 1.00e-04 train loss 2.5 acc 0.1 | val loss 2.5 acc 0.0
2026-01-01 10:00:09,000 INFO twostream.train: hmdb51_frames: 5612204 parameters, 108 train / 12 val samples
2026-01-01 10:00:13,000 INFO twostream.train: epoch 1/2 lr 1.00e-04 train loss 2.5 acc 0.1 | val loss 2.5 acc 0.0
2026-01-01 10:00:14,500 INFO twostream.train: epoch 2/2 lr 1.00e-04 train loss 2.5 acc 0.1 | val loss 2.5 acc 0.0
2026-01-01 10:01:00,000 INFO twostream.flow: flow: method raft_large on cuda, 96 videos of 224 px in 3.5 s (27.4 videos/s)
2026-01-01 10:01:02,000 INFO twostream.flow: flow: method raft_large on cuda, 40 videos of 224 px in 1.5 s (26.7 videos/s)
"""
    assert gpu_check.timings(log) == {"epoch_s": [2.25, 1.5], "compute_s": 5.0}
    assert gpu_check.timings("no log lines") == {}


def test_a_spent_budget_skips_every_part_and_says_so(tmp_path):
    proc = check(["--smoke", "--out", str(tmp_path), "--budget", "0"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["skipped"] == ["raft", "train", "stages"] and result["complete"] is False
    assert result["flow"] == result["train"] == result["stages"] == []
    assert "skipped: raft; train; stages" in (tmp_path / "gpu_check.txt").read_text()


# --- the whole check, on the CPU, with the GPU image's packages only


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    blocked = out / "blocked.txt"
    env = environment(PYTHONPATH=os.pathsep.join([str(BLOCKER), str(ROOT)]),
                      GPU_IMAGE_ALLOWED=os.pathsep.join([str(IMAGE), str(PINS)]), GPU_IMAGE_BLOCKED_LOG=str(blocked))
    proc = check(["--smoke", "--out", str(out)], env, timeout=3600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    print(proc.stdout[proc.stdout.index("twostream GPU check (smoke): "):])  # the summary, shown with -s
    return out, json.loads((out / "gpu_check.json").read_text()), proc


@pytest.mark.slow
def test_smoke_run_measures_every_path_against_its_raw_model(smoke):
    out, result, _ = smoke
    assert result["mode"] == "smoke" and result["complete"] and not result["skipped"] and not result["errors"]
    assert result["machine"]["torch"] and result["machine"]["python"] and result["startup_s"] > 0
    assert [r["batch"] for r in result["flow"]] == [4, 8]
    for r in result["flow"]:
        assert r["pairs_per_s"] > 0 and r["raw_pairs_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["pairs_per_s"] / r["raw_pairs_per_s"])
    configs = {(r["model"], r["batch"], r["precision"]) for r in result["train"]}
    assert configs == {(m, b, p) for m in ("spatial", "temporal", "fusion") for b in (2, 4) for p in ("fp32", "bf16")}
    assert all(r["ratio"] > 0 and r["channels_last"] for r in result["train"])
    assert len(result["loader"]) == 6 and all(r["ratio"] > 0 for r in result["loader"])


@pytest.mark.slow
def test_smoke_run_times_and_projects_every_stage(smoke):
    from twostream.params import read_yaml

    out, result, _ = smoke
    stages = {r["stage"]: r for r in result["stages"]}
    assert list(stages) == list(read_yaml(ROOT / "dvc.yaml")["stages"])
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in stages.values())
    for name in ("pad_resize", "sample_frames", "flow", "stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream",
                 "evaluate"):
        assert stages[name]["scale"] > 1 and stages[name]["projected_s"] > 0, stages[name]
    assert len(stages["hmdb51_frames"]["epoch_s"]) == 5 and stages["flow"]["compute_s"] > 0
    assert stages["download"]["projected_s"] is None
    assert stages["flow"]["real_items"] == 1200 + 3600  # 1,200 clips' stacks and 10 test clips of 360 videos
    assert stages["stanford40_frames"]["scale"] == pytest.approx(
        21 * (3192 + 360) / stages["stanford40_frames"]["items"], rel=1e-3)
    for name in ("stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream"):
        assert stages[name]["floor_s"] > 0 and stages[name]["ratio_to_floor"] > 0
    assert stages["flow"]["floor_s"] is None  # the smoke's stages use DIS flow: no RAFT floor to compare with
    projection = result["projection"]
    assert projection["total_s"] >= sum(r["projected_s"] for r in stages.values() if r["projected_s"]) - 1
    assert set(result["targets"]) >= {"flow_met", "train_met", "pipeline_met"}


@pytest.mark.slow
def test_smoke_run_writes_a_summary_and_imports_only_the_image_and_the_wheels(smoke):
    out, result, proc = smoke
    text = (out / "gpu_check.txt").read_text()
    assert text.startswith("twostream GPU check (smoke): ")
    for needle in ("flow_batch_size    8:", "fusion   batch    4 bf16:", "stanford40_frames", "projected full setting",
                   "targets: flow"):
        assert needle in text
    assert proc.stdout.endswith(text) and "Running stage" not in text  # the summary, also on stdout
    assert "$ " + sys.executable in (out / "gpu_check.log").read_text()  # every command, with its output
    # packages imported optionally (and done without) may be blocked; none that the check needs
    blocked = set((out / "blocked.txt").read_text().split()) if (out / "blocked.txt").exists() else set()
    assert not blocked & {"dvc", "dvclive", "av", "simplejpeg", "ruamel", "rarfile"}


# --- the GPU side's arithmetic, without a GPU


def test_the_gpu_run_measures_the_full_setting_within_8_minutes():
    config = gpu_check.gpu_config()
    assert (config.device, config.size, config.flow_size, config.raft_updates) == ("cuda", 224, 224, 12)
    assert config.flow_batches == (16, 32, 64, 128) and config.batches == (32, 128)
    assert config.precisions == ("fp32", "bf16") and not config.stage_overrides
    assert sum(config.caps.values()) <= config.budget <= 8 * 60 - 20


def test_floors_use_raw_raft_and_the_stages_batch(tmp_path):
    run = gpu_check.Run(gpu_check.parse_args(["--out", str(tmp_path / "out"), "--work", str(tmp_path)]),
                        gpu_check.gpu_config())
    try:
        run.result["flow"] = [{"batch": 16, "raw_pairs_per_s": 400.0}, {"batch": 64, "raw_pairs_per_s": 800.0}]
        run.result["train"] = [{"model": m, "batch": b, "precision": p, "raw_samples_per_s": rate}
                               for m, rate in (("spatial", 1000.0), ("temporal", 2000.0), ("fusion", 500.0))
                               for b in (32, 128) for p in ("fp32", "bf16")]
        run.result["train"][0]["raw_samples_per_s"] = 1500.0  # spatial, batch 32, fp32: the stages' setting
        raw = run.full_params(stage_run=True)
        floors = run.floors({"flow": 4800}, raw)
        assert floors["flow"] == pytest.approx(4800 * 8 / 800)
        assert floors["stanford40_frames"] == pytest.approx(21 * 3192 / 1500)
        assert floors["hmdb51_frames"] == pytest.approx(11 * 5 * 756 / 1500)
        assert floors["hmdb51_flow"] == pytest.approx(21 * 756 / 2000)
        assert floors["hmdb51_twostream"] == pytest.approx(6 * 756 / 500)
        assert run.result["projection_floor"] == {"precision": "fp32", "batch": 32}
        assert flat_value(raw, "data.synthetic.videos_per_class") == 15 and flat_value(raw, "image.size") == 224
        assert flat_value(raw, "hmdb51_flow.epochs") == gpu_check.REDUCED_EPOCHS
    finally:
        run.close()


def flat_value(raw, key):
    return gpu_check.flat(raw)[key]


def test_memory_poller_keeps_the_peak_and_a_window(monkeypatch):
    values = iter([5, 9, 7] + [3] * 100)
    monkeypatch.setattr(gpu_check.MemoryPoller, "_reader", lambda self: lambda: next(values))
    poller = gpu_check.MemoryPoller(True)
    try:
        deadline = gpu_check.time.monotonic() + 30
        while poller.peak != 9 and gpu_check.time.monotonic() < deadline:
            gpu_check.time.sleep(0.2)
        assert poller.peak == 9
        poller.start_window()
        gpu_check.time.sleep(2.5)
        assert poller.window in (3, 7) and poller.peak == 9
    finally:
        poller.stop()
    assert gpu_check.MemoryPoller(False).peak is None
