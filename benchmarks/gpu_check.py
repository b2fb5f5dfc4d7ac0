"""The GPU check: the full setting's speed on one GPU machine without network, in one call.

    benchmarks/gpu_check.sh [--smoke] [--out DIR]        (make gpu-check; docs/performance.md)

1. Checks the machine: torch >= 2.4 and torchvision >= 0.19 already installed, a CUDA device (not
   with --smoke), and installs what benchmarks/gpu_wheels.txt lists and the machine lacks from the
   wheels folder (.whl/, filled by `make gpu-wheels`; at most 60 MiB) into a temporary directory.
2. Times the hot paths with benchmarks/benchmark.py at the full setting's sizes: RAFT-large at 224 px,
   12 updates, per flow_batch_size 16, 32, 64, 128; GoogLeNet, ResNet-18 (24 channels) and the fusion
   at 224 px, batch 32 and 128, fp32 and bf16, channels_last; each against its raw model.
3. Runs every stage of the full setting (params-full.yaml, then params-realsize.yaml) on synthetic data
   of the real shapes at a reduced count (the smallest the split accepts, one epoch per training stage)
   with `python stages/...` as dvc.yaml runs them (no DVC), and projects each stage's wall time to the
   real sizes: 1,200 clips plus 3,600 test-clip stacks, 3,856 stills, the seed's epochs.
4. Writes DIR/gpu_check.json, a text summary DIR/gpu_check.txt and the full log DIR/gpu_check.log.

Every part has a time cap and the whole run a deadline (--budget); what does not fit is skipped and
listed under "skipped". --smoke runs the same code on the CPU at tiny sizes (tests/test_gpu_check.py).
This module imports only the standard library (and twostream.errors) until the wheels are installed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from twostream.errors import TwostreamError  # noqa: E402  (imports nothing else)

MIN_TORCH = (2, 4)
MIN_TORCHVISION = (0, 19)
WHEELS_MAX_BYTES = 60 * 2**20
DEFAULT_WHEELS = ROOT / ".whl"
DEFAULT_REQUIREMENTS = ROOT / "benchmarks" / "gpu_wheels.txt"
MIB = 2**20

# The real sizes the stage times are projected to (the seed's lists, docs/reproducibility.md): Stanford40 train
# oversampled to 3,192 and val to 360, 304 test; HMDB51 756 / 84 / 360 clips. Test-clip stacks:
# video_test.clips (params-full.yaml) per test video. Epochs: params-full.yaml.
REAL_STANFORD40 = {"train": 3192, "val": 360, "test": 304}
REAL_HMDB51 = {"train": 756, "val": 84, "test": 360}
# Performance targets (docs/performance.md).
TARGET_FLOW_RATIO = 0.70
TARGET_TRAIN_RATIO = 0.80
TARGET_PIPELINE_FLOOR = 2.0
# The stage run trains two epochs: the second one's time (from the stage's log) is the steady epoch
# that the projection scales; the first one's extra (DataLoader start, first CUDA calls) counts once.
REDUCED_EPOCHS = 2
TRAIN_STAGES = ("stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream")


class GpuCheckError(TwostreamError):
    """A machine or wheels folder the GPU check cannot run on; the message says what to do."""


@dataclass(frozen=True)
class Config:
    """What one run measures: the full setting on a GPU, or tiny sizes on the CPU (--smoke)."""
    device: str
    size: int                    # training image size of the benchmark
    flow_size: int
    raft_updates: int
    flow_clips: int
    flow_batches: tuple[int, ...]
    batches: tuple[int, ...]
    precisions: tuple[str, ...]
    steps: int                   # training batches timed at the largest batch
    repeat: int
    workers: int
    pin_memory: bool
    budget: float                # seconds for the whole run
    caps: dict[str, float]       # seconds per part
    images_per_class: int | None = None  # the stage run's Stanford40 size (None: the smallest the split accepts)
    stage_overrides: dict[str, object] = field(default_factory=dict)  # after full + realsize + reduced


def gpu_config() -> Config:
    cpus = os.cpu_count() or 1
    # 48 clips: 384 pairs, 3 passes of the largest flow batch; 6 steps: 768 samples per timed epoch
    return Config(device="cuda", size=224, flow_size=224, raft_updates=12, flow_clips=48,
                  flow_batches=(16, 32, 64, 128), batches=(32, 128), precisions=("fp32", "bf16"), steps=6, repeat=2,
                  workers=max(1, min(8, cpus - 2)), pin_memory=True, budget=450.0,
                  caps={"raft": 65.0, "train": 120.0, "stages": 235.0}, images_per_class=40)


def smoke_config() -> Config:
    return Config(device="cpu", size=64, flow_size=128, raft_updates=1, flow_clips=1, flow_batches=(4, 8),
                  batches=(2, 4), precisions=("fp32", "bf16"), steps=1, repeat=1, workers=1, pin_memory=False,
                  budget=1800.0, caps={"raft": 600.0, "train": 600.0, "stages": 900.0},
                  # the CPU cannot run RAFT-large on every clip in a test: OpenCV's DIS flow, 64 px,
                  # short clips and 2 test clips per video; the rest stays the full setting
                  stage_overrides={"image.size": 64, "flow.method": "dis", "data.synthetic.min_frames": 24,
                                   "data.synthetic.max_frames": 40, "video_test.clips": 2})


# ----------------------------------------------------------------------------------------------
# Preflight: versions, device, wheels (standard library only)


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of a version string such as '2.11.0+cu130' or '2.4.0a0+git1234'."""
    match = re.match(r"\s*(\d+)\.(\d+)", text)
    if not match:
        raise GpuCheckError(f"cannot read the version {text!r}")
    return int(match.group(1)), int(match.group(2))


def check_versions(torch_version: str | None, torchvision_version: str | None) -> None:
    """torch >= 2.4 and torchvision >= 0.19 must be installed already (they are never carried as wheels)."""
    for name, version, minimum in (("torch", torch_version, MIN_TORCH),
                                   ("torchvision", torchvision_version, MIN_TORCHVISION)):
        want = ".".join(map(str, minimum))
        if version is None:
            raise GpuCheckError(f"{name} is not installed for {sys.executable}: install {name} >= {want} "
                                f"(a CUDA build on a GPU machine), or set PYTHON to the interpreter that has it")
        if parse_version(version) < minimum:
            raise GpuCheckError(f"{name} {version} is older than {want}: upgrade {name} to >= {want} "
                                f"(the check uses no newer API than torch 2.4 / torchvision 0.19)")


def installed_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_requirements(path: Path) -> list[tuple[str, str]]:
    """(name, version) of each `name==version` line."""
    pins = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!_-]+)", text)
        if not match:
            raise GpuCheckError(f"{path}:{number}: expected name==version, got {text!r}")
        pins.append((match.group(1), match.group(2)))
    return pins


def wheels_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.whl") if p.is_file())


def plan_wheels(pins: list[tuple[str, str]], folder: Path,
                installed: Callable[[str], str | None] = installed_version) -> list[Path]:
    """The wheels to install: one for each pinned package that `installed` does not find. Errors name
    the missing wheel or a folder over 60 MiB (more than the device call carries)."""
    folder = Path(folder)
    if folder.is_dir():
        total = wheels_size(folder)
        if total > WHEELS_MAX_BYTES:
            raise GpuCheckError(f"{folder}: {total / MIB:.1f} MiB of wheels, more than the "
                                f"{WHEELS_MAX_BYTES // MIB} MiB allowed: delete the folder and run `make gpu-wheels` "
                                f"(it downloads only benchmarks/gpu_wheels.txt)")
    wheels = {}
    for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
        parts = path.name.split("-")
        if len(parts) >= 5:
            wheels[(normalize(parts[0]), parts[1])] = path
    needed = []
    for name, version in pins:
        if installed(name) is not None:
            continue
        path = wheels.get((normalize(name), version))
        if path is None:
            raise GpuCheckError(f"{folder}: no wheel of {name}=={version}, which this machine lacks: run "
                                f"`make gpu-wheels` on a machine with the package index and bring {folder.name}/ along "
                                f"(device calls: carry it)")
        needed.append(path)
    return needed


def install_wheels(wheels: list[Path], target: Path, log) -> None:
    if not wheels:
        return
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
               "--no-cache-dir", "--disable-pip-version-check", "--target", str(target), *map(str, wheels)]
    proc = subprocess.run(command, capture_output=True, text=True)
    log(proc.stdout + proc.stderr)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise GpuCheckError(f"installing {len(wheels)} wheel(s) into {target} failed ({last}): run "
                            f"`make gpu-wheels` again on a machine with the package index")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def nvidia_smi(*fields: str) -> list[str] | None:
    """The first GPU's fields from nvidia-smi, or None without it."""
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode or not out.stdout.strip():
        return None
    return [v.strip() for v in out.stdout.strip().splitlines()[0].split(",")]


class MemoryPoller:
    """Peak memory used on the first GPU (NVML through pynvml, else nvidia-smi), sampled each second:
    the stages run in their own processes, so torch's own peak counters cannot see them."""

    def __init__(self, enabled: bool):
        self.peak = self.window = None
        self._stop = threading.Event()
        self._read = self._reader() if enabled else None
        if self._read:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _reader(self):
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            return lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
        except Exception:  # no pynvml or no NVML: nvidia-smi
            if nvidia_smi("memory.used") is None:
                return None
            return lambda: int(float(nvidia_smi("memory.used")[0]) * MIB)

    def _run(self):
        while not self._stop.wait(1.0):
            try:
                used = self._read()
            except Exception:
                continue
            self.peak = max(self.peak or 0, used)
            self.window = max(self.window or 0, used)

    def start_window(self) -> None:
        self.window = None

    def stop(self) -> None:
        self._stop.set()


# ----------------------------------------------------------------------------------------------
# The run


class Run:
    def __init__(self, args: argparse.Namespace, config: Config):
        self.args, self.config = args, config
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="twostream-gpu-check-", dir=args.work))
        self.started = time.monotonic()
        self.log_file = open(self.out / "gpu_check.log", "w")
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.poller: MemoryPoller | None = None
        self.result: dict = {
            "mode": "smoke" if args.smoke else "gpu", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "budget_s": config.budget, "caps_s": config.caps, "skipped": [], "errors": [], "complete": False,
            "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count()},
            "settings": {"size": config.size, "flow_size": config.flow_size, "raft_updates": config.raft_updates,
                         "flow_batches": list(config.flow_batches), "batches": list(config.batches),
                         "precisions": list(config.precisions), "channels_last": True, "workers": config.workers,
                         "pin_memory": config.pin_memory},
            "wheels_installed": [], "flow": [], "train": [], "loader": [], "stages": [], "projection": None,
            "targets": None,
        }

    # -- helpers
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.config.budget - self.elapsed()

    def log(self, text: str) -> None:
        if text:
            self.log_file.write(text if text.endswith("\n") else text + "\n")
            self.log_file.flush()

    def say(self, text: str) -> None:
        print(text, flush=True)
        self.log(text)

    def save(self) -> None:
        self.result["wall_s"] = round(self.elapsed(), 1)
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(self.result, indent=2) + "\n")
        os.replace(tmp, self.out / "gpu_check.json")

    def cap(self, part: str, reserve: float = 10.0) -> float:
        """Seconds this part may run: its own cap, within what is left of the budget."""
        return min(self.config.caps[part], self.left() - reserve)

    def run_logged(self, command: list[str], timeout: float, env: dict | None = None) -> tuple[int | None, str]:
        """Run `command` with its output into the log; (exit status or None when it hit `timeout`, output)."""
        self.log("$ " + shlex.join(command))
        proc = subprocess.Popen(command, cwd=ROOT, env=env or self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines: list[str] = []

        def pump():
            for text in proc.stdout:
                lines.append(text)
                self.log_file.write(text)
                self.log_file.flush()
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the command and the processes it started (DataLoader workers)
            proc.wait()
            code = None
        reader.join(timeout=10)
        return code, "".join(lines)

    # -- 1. preflight
    def preflight(self, wheels: list[Path]) -> None:
        site = self.work / "site"
        install_wheels(wheels, site, self.log)
        self.result["wheels_installed"] = [p.name for p in wheels]
        paths = ([str(site)] if wheels else []) + [str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
        self.env["PYTHONPATH"] = os.pathsep.join(paths)
        if wheels:
            sys.path.insert(0, str(site))
        self.poller = MemoryPoller(self.config.device == "cuda")
        machine = self.result["machine"]
        machine.update(torch=installed_version("torch"), torchvision=installed_version("torchvision"))
        if os.path.isdir("/dev/shm"):  # DataLoader workers hand batches over through it
            machine["dev_shm_bytes"] = shutil.disk_usage("/dev/shm").total
        if self.config.device == "cuda":
            info = nvidia_smi("name", "driver_version", "memory.total")
            if info:
                machine.update(gpu=info[0], driver=info[1], gpu_memory_bytes=int(float(info[2]) * MIB))
        # process start-up (interpreter, torch, the project's modules, the device): subtracted from each
        # stage's time before it is scaled, added back once
        probe = ("import time; t = time.perf_counter(); import torch, torchvision, cv2; import twostream.train, "
                 "twostream.flow, twostream.evaluate; torch.zeros(1, device=%r).sum().item(); "
                 "print(time.perf_counter() - t)" % self.config.device)
        start = time.perf_counter()
        code, out = self.run_logged([sys.executable, "-c", probe], 120)
        self.result["startup_s"] = round(time.perf_counter() - start, 2) if code == 0 else None
        if code != 0:
            raise GpuCheckError(f"the project's modules do not import here (see {self.out / 'gpu_check.log'}): "
                                f"run `make gpu-wheels` again and carry .whl/")
        self.save()

    # -- 2. benchmarks
    def benchmark(self, part: str) -> None:
        cap = self.cap(part)
        if cap <= 5:
            self.skip(part, "the budget is spent")
            return
        c = self.config
        params = self.work / "bench_params.yaml"
        if not params.exists():
            write_params(params, self.full_params())
        out = self.work / f"bench_{part}.json"
        command = [sys.executable, str(ROOT / "benchmarks" / "benchmark.py"), "--params", str(params),
                   "--runtime", str(ROOT / "runtime.yaml"), "--device", c.device, "--parts", part,
                   "--size", str(c.size), "--flow-size", str(c.flow_size), "--updates", str(c.raft_updates),
                   "--clips", str(c.flow_clips), "--flow-batch", *map(str, c.flow_batches),
                   "--batch", *map(str, c.batches), "--precision", *c.precisions, "--channels-last",
                   "--workers", str(c.workers), "--pin-memory" if c.pin_memory else "--no-pin-memory",
                   "--steps", str(c.steps), "--repeat", str(c.repeat), "--deadline", str(max(1.0, cap - 20)),
                   "--json", str(out)]
        env = dict(self.env, TORCH_HOME=str(self.torch_home()))
        self.say(f"{part}: benchmarks/benchmark.py (cap {cap:.0f} s)")
        code, output = self.run_logged(command, cap, env)
        for text in output.splitlines():
            if text.startswith("  "):
                print(text, flush=True)
        figures = json.loads(out.read_text()) if out.exists() else {}
        if code is None:
            self.skip(f"{part} (stopped at its {cap:.0f} s cap)", "time cap")
        elif code != 0:
            self.fail(f"benchmarks/benchmark.py --parts {part} failed with exit status {code} ({last_line(output)})")
        key = "flow" if part == "raft" else "train"
        self.result[key] = figures.get(key, [])
        if part == "train":
            self.result["loader"] = figures.get("loader", [])
        self.result["skipped"] += figures.get("skipped", [])
        for name in ("device_name", "cuda", "cudnn"):
            if figures.get(name) is not None:
                self.result["machine"][name] = figures[name]
        peak = figures.get("peak_memory_bytes")
        if peak is not None:
            self.result["machine"][f"peak_torch_allocated_bytes_{part}"] = peak
        self.save()

    def fail(self, what: str) -> None:
        """A part that failed: recorded, and the run goes on with the next part."""
        self.result["errors"].append(what)
        self.say(f"FAILED: {what}")
        self.save()

    def skip(self, what: str, why: str) -> None:
        self.result["skipped"].append(what)
        self.say(f"{what}: skipped ({why})")
        self.save()

    def torch_home(self) -> Path:
        """Real weights where TORCH_HOME (or torch.hub's default) has them, else marked random stand-ins."""
        home = self.work / "torch_home"
        if not home.exists():
            cache = os.environ.get("TORCH_HOME")
            code, out = self.run_logged([sys.executable, "-m", "twostream.weights", str(home)], 300,
                                        dict(self.env, **({"TORCH_HOME": cache} if cache else {})))
            if code != 0:
                raise GpuCheckError(f"preparing the weights in {home} failed: see {self.out / 'gpu_check.log'}")
            self.result["standin_weights"] = "STAND-IN WEIGHTS" in out
        return home

    def full_params(self, stage_run: bool = False) -> dict:
        """params.yaml, then params-full.yaml, params-realsize.yaml and (for the stage run) the reduced
        count: the smallest HMDB51 the split accepts, few Stanford40 stills, two epochs per training stage."""
        from twostream.data.sizes import smallest_sizes
        from twostream.params import apply_overrides, parse_params, read_overrides, read_yaml

        raw = read_yaml(ROOT / "params.yaml")
        for name in ("params-full.yaml", "params-realsize.yaml"):
            raw = apply_overrides(raw, read_overrides(ROOT / name), name)
        if stage_run:
            smallest = smallest_sizes(parse_params(raw).split)
            images = max(smallest["images_per_class"], self.config.images_per_class or 0)
            reduced = {"data.synthetic.images_per_class": images,
                       "data.synthetic.videos_per_class": smallest["videos_per_class"],
                       **{f"{stage}.epochs": REDUCED_EPOCHS for stage in TRAIN_STAGES},
                       **self.config.stage_overrides}
            raw = apply_overrides(raw, reduced, "the GPU check's reduced count")
        parse_params(raw)  # validated
        return raw

    # -- 3. stages
    def stages(self) -> None:
        cap = self.cap("stages")
        if cap <= 20:
            self.skip("stages", "the budget is spent")
            return
        deadline = time.monotonic() + cap
        raw = self.full_params(stage_run=True)
        params_file, runtime_file = self.work / "params.yaml", self.work / "runtime.yaml"
        write_params(params_file, raw)
        flow_batch = self.best_flow_batch()
        runtime = self.runtime(flow_batch)
        write_params(runtime_file, runtime)
        self.result["stage_settings"] = {
            "counts": None, "params": {k: v for k, v in flat(raw).items() if k.startswith(("data.synthetic", "image",
                                      "flow", "video_test", "model", "train.", "stanford40_frames", "hmdb51_"))},
            "runtime": {k: runtime[k] for k in ("device", "loader_workers", "pin_memory", "channels_last",
                                                "flow_batch_size")}}
        torch_home = self.torch_home()
        env = dict(self.env, TORCH_HOME=str(torch_home))
        poller = self.poller
        self.say(f"stages: the full setting at a reduced count in {self.work} (cap {cap:.0f} s, flow_batch_size "
                 f"{flow_batch})")
        try:
            for name, command in stage_commands(ROOT / "dvc.yaml", raw, self.work, params_file, runtime_file):
                record = {"stage": name, "status": "skipped", "seconds": None, "peak_gpu_memory_bytes": None}
                self.result["stages"].append(record)
                left = deadline - time.monotonic()
                if left <= 5:
                    self.skip(f"stage {name}", f"the stages' {cap:.0f} s cap is spent")
                    continue
                poller.start_window()
                start = time.perf_counter()
                code, output = self.run_logged(command, left, env)
                record["seconds"] = round(time.perf_counter() - start, 2)
                record.update(timings(output))
                record["peak_gpu_memory_bytes"] = poller.window
                record["status"] = "ok" if code == 0 else "timed out" if code is None else f"exit status {code}"
                self.say(f"  {name}: {record['seconds']:.1f} s ({record['status']})")
                self.save()
                if code != 0:  # the later stages need this one's outputs
                    if code is None:
                        self.result["skipped"].append(f"stage {name} (stopped at the stages' cap)")
                    else:
                        self.fail(f"stage {name} failed with exit status {code} ({last_line(output)})")
                    deadline = time.monotonic()
        finally:
            self.result["machine"]["peak_gpu_memory_used_bytes"] = poller.peak
        self.project(raw)
        self.save()

    def runtime(self, flow_batch: int) -> dict:
        from twostream.params import read_yaml

        runtime = read_yaml(ROOT / "runtime.yaml")
        runtime.update(device=self.config.device, torchrun_processes=1, loader_workers=self.config.workers,
                       pin_memory=self.config.pin_memory, channels_last=True, flow_batch_size=flow_batch,
                       progress=False)
        runtime["downloads"] = dict(runtime["downloads"], cache_dir=str(self.work / "downloads"))
        return runtime

    def best_flow_batch(self) -> int:
        """The flow stage's batch: the fastest of the sweep end to end, else runtime.yaml's."""
        if self.result["flow"]:
            return max(self.result["flow"], key=lambda r: r["pairs_per_s"])["batch"]
        from twostream.params import load_runtime

        return load_runtime(ROOT / "runtime.yaml").flow_batch_size

    # -- 4. projection
    def project(self, raw: dict) -> None:
        """Each stage's time beyond process start-up, scaled by its items (x epochs) at the real sizes."""
        from twostream.params import read_overrides

        full = read_overrides(ROOT / "params-full.yaml")
        counts = count_items(self.work)
        self.result["stage_settings"]["counts"] = counts
        clips_per_video = full["video_test.clips"]
        real = {
            "pad_resize": sum(REAL_STANFORD40.values()),
            "sample_frames": sum(REAL_HMDB51.values()),
            "flow": sum(REAL_HMDB51.values()) + REAL_HMDB51["test"] * clips_per_video,
            "stanford40_frames": REAL_STANFORD40["train"] + REAL_STANFORD40["val"],  # per epoch
            "hmdb51_frames": REAL_HMDB51["train"] + REAL_HMDB51["val"],
            "hmdb51_flow": REAL_HMDB51["train"] + REAL_HMDB51["val"],
            "hmdb51_twostream": REAL_HMDB51["train"] + REAL_HMDB51["val"],
            "evaluate": REAL_STANFORD40["test"] + REAL_HMDB51["test"] * (1 + clips_per_video),
        }
        here = {
            "pad_resize": sum(counts["stanford40"].values()),
            "sample_frames": sum(counts["hmdb51"].values()),
            "flow": sum(counts["hmdb51"].values()) + counts["test_clip_stacks"],
            "stanford40_frames": counts["stanford40"]["train"] + counts["stanford40"]["val"],
            "hmdb51_frames": counts["hmdb51"]["train"] + counts["hmdb51"]["val"],
            "hmdb51_flow": counts["hmdb51"]["train"] + counts["hmdb51"]["val"],
            "hmdb51_twostream": counts["hmdb51"]["train"] + counts["hmdb51"]["val"],
            "evaluate": counts["stanford40"]["test"] + counts["hmdb51"]["test"] + counts["test_clip_stacks"],
        }
        startup = self.result.get("startup_s") or 0.0
        floors = self.floors(real, raw)
        epochs = {stage: full[f"{stage}.epochs"] for stage in TRAIN_STAGES}
        total = floor_total = gpu_total = 0.0
        complete = True
        for record in self.result["stages"]:
            name = record["stage"]
            record["items"], record["real_items"] = here.get(name), real.get(name)
            if record["status"] != "ok":
                record["projected_s"] = None
                complete = False
                continue
            if name == "download":  # synthetic data generation here; the real stage downloads
                record["projected_s"] = None
                record["note"] = "generates the synthetic data; the real stage downloads (network-bound)"
                continue
            if name in TRAIN_STAGES and record.get("epoch_s"):
                # the steady (second) epoch per item, times the real items and the seed's epochs; the rest once
                steady = sum(record["epoch_s"])
                fixed = max(0.0, record["seconds"] - REDUCED_EPOCHS * steady)
                record["scale"] = round(epochs[name] * real[name] / here[name], 2)
                record["projected_s"] = round(fixed + steady * record["scale"], 1)
                record["real_epochs"] = epochs[name]
            elif name == "flow" and record.get("compute_s"):
                # the flow computation (flow_images' own timing) scales; loading RAFT and start-up do not
                record["scale"] = round(real[name] / here[name], 2)
                fixed = max(0.0, record["seconds"] - record["compute_s"])
                record["projected_s"] = round(fixed + record["compute_s"] * record["scale"], 1)
            elif name in real and here[name]:
                record["scale"] = round(real[name] / here[name], 2)
                record["projected_s"] = round(startup + max(0.0, record["seconds"] - startup) * record["scale"], 1)
            else:
                record["projected_s"] = record["seconds"]  # check_params, split: no per-item work to scale
            total += record["projected_s"]
            floor = floors.get(name)
            record["floor_s"] = None if floor is None else round(floor, 1)
            if name in floors:
                gpu_total += record["projected_s"]
                if floor is None:
                    complete = False
                else:
                    floor_total += floor
                    record["ratio_to_floor"] = round(record["projected_s"] / floor, 2)
        self.result["projection"] = {
            "method": "training stages: wall time - 2 x the second epoch's time (from the log), plus that epoch x the "
                      "seed's epochs x real / reduced samples (train + val); flow: wall time - flow_images' own time, "
                      "plus that time x real / reduced stacks; other stages: start-up + (wall time - start-up) x real "
                      "/ reduced items (an upper bound: per-run costs such as loading models are scaled too)",
            "startup_s": startup, "total_s": round(total, 1), "hours": round(total / 3600, 2),
            "flow_and_training_s": round(gpu_total, 1), "floor_s": round(floor_total, 1) if complete else None,
            "ratio_to_floor": round(gpu_total / floor_total, 2) if complete and floor_total else None,
            "floor_method": "raw RAFT (fastest flow batch) on the real pairs; the raw fp32 step at batch 32 (the "
                            "stages' setting) on the real training samples x epochs; validation and data stages "
                            "not in the floor",
        }

    def floors(self, real: dict, raw: dict) -> dict[str, float | None]:
        """Seconds the raw models would need for the real work of the GPU stages (None: not measured):
        raw RAFT at its fastest flow batch on the real pairs (only when the stages ran RAFT), the raw
        step at the stages' batch (else the largest measured) and precision on the real training
        samples x the seed's epochs. Validation, testing and data stages are not in the floor."""
        from twostream.params import FLOW_PAIRS, read_overrides

        full = read_overrides(ROOT / "params-full.yaml")
        values = flat(raw)
        precision = "bf16" if values["train.amp"] else "fp32"
        ran_raft = values["flow.method"] == "raft_large"
        raw_flow = max((r["raw_pairs_per_s"] for r in self.result["flow"]), default=None) if ran_raft else None
        measured = [r for r in self.result["train"] if r["precision"] == precision]
        batches = sorted({r["batch"] for r in measured})
        batch = values["train.batch_size"] if values["train.batch_size"] in batches else max(batches, default=None)
        self.result.setdefault("projection_floor", {}).update(precision=precision, batch=batch)

        def train_floor(epochs: int, samples: int, model: str) -> float | None:
            rates = [r["raw_samples_per_s"] for r in measured if r["model"] == model and r["batch"] == batch]
            return epochs * samples / rates[0] if rates else None

        return {
            "flow": None if raw_flow is None else real["flow"] * FLOW_PAIRS / raw_flow,
            "stanford40_frames": train_floor(full["stanford40_frames.epochs"], REAL_STANFORD40["train"], "spatial"),
            "hmdb51_frames": train_floor(full["hmdb51_frames.epochs"] * 5, REAL_HMDB51["train"], "spatial"),
            "hmdb51_flow": train_floor(full["hmdb51_flow.epochs"], REAL_HMDB51["train"], "temporal"),
            "hmdb51_twostream": train_floor(full["hmdb51_twostream.epochs"], REAL_HMDB51["train"], "fusion"),
        }

    # -- 5. targets and summary
    def finish(self) -> None:
        if self.poller is not None:
            self.result["machine"]["peak_gpu_memory_used_bytes"] = self.poller.peak
        flow = [r["ratio"] for r in self.result["flow"]]
        train = [r["ratio"] for r in self.result["train"]]
        projection = self.result["projection"] or {}
        self.result["targets"] = {
            "flow_ratio_min": TARGET_FLOW_RATIO, "train_ratio_min": TARGET_TRAIN_RATIO,
            "pipeline_floor_max": TARGET_PIPELINE_FLOOR,
            "flow_best_ratio": max(flow, default=None),
            "flow_met": None if not flow else max(flow) >= TARGET_FLOW_RATIO,
            "train_worst_ratio": min(train, default=None),
            "train_met": None if not train else min(train) >= TARGET_TRAIN_RATIO,
            "pipeline_ratio": projection.get("ratio_to_floor"),
            "pipeline_met": (None if projection.get("ratio_to_floor") is None
                             else projection["ratio_to_floor"] <= TARGET_PIPELINE_FLOOR),
        }
        self.result["complete"] = not self.result["skipped"] and not self.result["errors"]
        self.save()
        text = summary(self.result)
        (self.out / "gpu_check.txt").write_text(text)
        self.log(text)
        print(text, end="", flush=True)

    def close(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        self.log_file.close()
        if not self.args.keep_work:
            shutil.rmtree(self.work, ignore_errors=True)


def flat(raw: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_params(path: Path, raw: dict) -> None:
    """A params or runtime file: JSON, which YAML 1.2 (ruamel.yaml, as the stages read it) reads as is."""
    path.write_text(json.dumps(raw, indent=1) + "\n")


def last_line(text: str) -> str:
    lines = [t for t in text.strip().splitlines() if t.strip()]
    return lines[-1].strip() if lines else "(no output)"


def stage_commands(dvc_yaml: Path, raw: dict, work: Path, params: Path, runtime: Path):
    """(name, argv) of each stage in dvc.yaml's order, as dvc.yaml runs it, with the data, models,
    metrics and plots paths under `work` and this run's params and runtime files."""
    from twostream.params import read_yaml

    values = flat(raw)
    for name, stage in read_yaml(dvc_yaml)["stages"].items():
        cmd = re.sub(r"\$\{([^}]+)\}", lambda m: str(values[m.group(1)]), stage["cmd"])
        argv = shlex.split(cmd)
        if argv[0] != "python":
            raise GpuCheckError(f"{dvc_yaml}: stage {name}: expected a `python ...` command, got {cmd!r}")
        argv[0] = sys.executable
        for i, token in enumerate(argv):
            if token.split("/")[0] in ("data", "models", "metrics", "plots"):
                argv[i] = str(work / token)
        yield name, [*argv, "--params", str(params), "--runtime", str(runtime)]


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO twostream[.\w]*: (.*)$", re.M)


def timings(output: str) -> dict:
    """From a stage's log: the seconds of each training run's second epoch (`epoch_s`, one per model
    trained: five for hmdb51_frames) and flow_images' own seconds summed over its calls (`compute_s`)."""
    import calendar

    epoch_s, compute, previous = [], 0.0, None
    for date, millis, message in LOG_LINE.findall(output):
        t = calendar.timegm(time.strptime(date, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
        if re.match(r"\w+: \d+ parameters, ", message):
            previous = t
        elif (match := re.match(r"epoch (\d+)/\d+ ", message)) and previous is not None:
            if int(match.group(1)) == 2:
                epoch_s.append(round(t - previous, 3))
            previous = t
        elif match := re.match(r"flow: method \w+ on \w+, \d+ videos of \d+ px in ([\d.]+) s", message):
            compute += float(match.group(1))
    found = {}
    if epoch_s:
        found["epoch_s"] = epoch_s
    if compute:
        found["compute_s"] = round(compute, 2)
    return found


def count_items(work: Path) -> dict:
    """Rows of the arrays the stage run wrote: Stanford40 stills and HMDB51 clips per subset, test-clip stacks."""
    import numpy as np

    def rows(path: Path, dims: int = 1) -> int:
        if not path.exists():
            return 0
        shape = np.load(path, mmap_mode="r").shape
        return int(np.prod(shape[:dims]))

    data = work / "data"
    return {
        "stanford40": {s: rows(data / "images" / f"stanford40_{s}.npy") for s in ("train", "val", "test")},
        "hmdb51": {s: rows(data / "frames" / f"hmdb51_{s}_positions.npy") for s in ("train", "val", "test")},
        "test_clip_stacks": rows(data / "flow" / "hmdb51_test_clips.npy", 2),
    }


def fmt_bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**30:.1f} GiB"


def summary(result: dict) -> str:
    """The text summary of gpu_check.json."""
    m = result["machine"]
    lines = [f"twostream GPU check ({result['mode']}): {result['wall_s']:.0f} s of a {result['budget_s']:.0f} s budget"
             f"{'' if result['complete'] else ', INCOMPLETE'}",
             f"machine: {m.get('gpu') or m.get('device_name') or 'CPU'}, driver {m.get('driver', 'n/a')}, "
             f"torch {m.get('torch')}, torchvision {m.get('torchvision')}, CUDA {m.get('cuda', 'n/a')}, "
             f"Python {m['python']}, {m['cpus']} CPUs; peak GPU memory used {fmt_bytes(m.get('peak_gpu_memory_used_bytes'))}"
             f" (torch allocated: flow {fmt_bytes(m.get('peak_torch_allocated_bytes_raft'))}, training "
             f"{fmt_bytes(m.get('peak_torch_allocated_bytes_train'))})"]
    if result["wheels_installed"]:
        lines.append(f"installed from wheels: {len(result['wheels_installed'])} package(s)")
    s = result["settings"]
    lines.append(f"flow: RAFT-large {s['flow_size']} px, {s['raft_updates']} updates (target >= "
                 f"{TARGET_FLOW_RATIO:.0%} of raw)")
    for r in result["flow"]:
        lines.append(f"  flow_batch_size {r['batch']:>4}: {r['pairs_per_s']:8.1f} pairs/s, raw {r['raw_pairs_per_s']:8.1f}, "
                     f"{r['ratio']:.0%}")
    lines.append(f"training: {s['size']} px, channels_last, {s['workers']} loader worker(s) (target >= "
                 f"{TARGET_TRAIN_RATIO:.0%} of the raw step)")
    for r in result["train"]:
        lines.append(f"  {r['model']:<8} batch {r['batch']:>4} {r['precision']}: {r['samples_per_s']:8.1f} samples/s, "
                     f"raw {r['raw_samples_per_s']:8.1f}, {r['ratio']:.0%}")
    for r in result["loader"]:
        lines.append(f"  loader {r['model']:<8} batch {r['batch']:>4}: {r['samples_per_s']:8.1f} samples/s, "
                     f"{r['ratio']:.0%} of the fastest step")
    if result["stages"]:
        lines.append(f"stages at a reduced count (start-up {result.get('startup_s')} s), projected to the real sizes:")
        for r in result["stages"]:
            projected = r.get("projected_s")
            extra = "" if projected is None else f" -> {projected:9.1f} s"
            if r.get("scale"):
                per_epoch = f" x {r['real_epochs']} epochs" if r.get("real_epochs") else ""
                extra += f" (x{r['scale']:g}: {r['items']} -> {r['real_items']} items{per_epoch})"
            if r.get("ratio_to_floor") is not None:
                extra += f", {r['ratio_to_floor']:.2f}x its floor"
            seconds = "-" if r["seconds"] is None else f"{r['seconds']:.1f} s"
            lines.append(f"  {r['stage']:<14} {seconds:>9} {r['status']}{extra}")
    p = result.get("projection")
    if p:
        lines.append(f"projected full setting (without the download): {p['total_s']:.0f} s ({p['hours']:.2f} h); "
                     f"flow + training {p['flow_and_training_s']:.0f} s, compute floor "
                     f"{'n/a' if p['floor_s'] is None else format(p['floor_s'], '.0f') + ' s'}, ratio "
                     f"{'n/a' if p['ratio_to_floor'] is None else format(p['ratio_to_floor'], '.2f')} (target <= "
                     f"{TARGET_PIPELINE_FLOOR:g})")
    t = result.get("targets") or {}
    if t:
        def met(v):
            return "not measured" if v is None else "met" if v else "NOT met"
        lines.append(f"targets: flow {met(t['flow_met'])}, training {met(t['train_met'])}, pipeline "
                     f"{met(t['pipeline_met'])}")
    if result["skipped"]:
        lines.append("skipped: " + "; ".join(result["skipped"]))
    if result["errors"]:
        lines.append("FAILED: " + "; ".join(result["errors"]))
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (the test suite runs this)")
    parser.add_argument("--out", default="gpu-check", help="output directory (default: gpu-check)")
    parser.add_argument("--wheels", default=str(DEFAULT_WHEELS), help="wheels folder (default: .whl)")
    parser.add_argument("--requirements", default=str(DEFAULT_REQUIREMENTS),
                        help="the packages to install when missing (default: benchmarks/gpu_wheels.txt)")
    parser.add_argument("--budget", type=float, help="seconds for the whole run (default: 450; --smoke 1800)")
    parser.add_argument("--work", help="where the temporary data go (default: the system's temporary directory)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary data")
    parser.add_argument("--check-wheels", action="store_true",
                        help="only check that the wheels folder holds every pinned package within 60 MiB (make gpu-wheels)")
    return parser.parse_args(argv)


def torch_versions() -> tuple[str | None, str | None]:
    """The installed torch and torchvision versions (from their metadata, else their modules)."""
    versions = []
    for name in ("torch", "torchvision"):
        version = installed_version(name)
        if version is None:
            try:
                version = __import__(name).__version__
            except ImportError:
                pass
        versions.append(version)
    return versions[0], versions[1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = None
    try:
        if args.check_wheels:
            folder = Path(args.wheels)
            wheels = plan_wheels(read_requirements(Path(args.requirements)), folder, installed=lambda name: None)
            print(f"{folder}: {len(wheels)} wheels, {wheels_size(folder) / MIB:.1f} MiB (at most "
                  f"{WHEELS_MAX_BYTES // MIB} MiB): " + " ".join(p.name for p in wheels))
            return 0
        check_versions(*torch_versions())
        if not args.smoke and not cuda_available():
            raise GpuCheckError("no CUDA device: torch.cuda.is_available() is False here; run it on a machine with "
                                "an NVIDIA GPU and a CUDA build of torch, or add --smoke for the CPU smoke run")
        wheels = plan_wheels(read_requirements(Path(args.requirements)), Path(args.wheels))
        config = smoke_config() if args.smoke else gpu_config()
        if args.budget is not None:
            config = dataclasses.replace(config, budget=args.budget)
        run = Run(args, config)
        run.say(f"twostream GPU check ({run.result['mode']}): output in {run.out}, budget {config.budget:.0f} s")
        run.preflight(wheels)
        for part in ("raft", "train"):
            run.benchmark(part)
        run.stages()
        run.finish()
        if run.result["errors"]:
            raise GpuCheckError(f"{len(run.result['errors'])} part(s) failed ({'; '.join(run.result['errors'])}); "
                                f"the summary is in {run.out / 'gpu_check.txt'}, the whole log in "
                                f"{run.out / 'gpu_check.log'}")
        return 0
    except GpuCheckError as exc:
        print(f"error: gpu_check: {exc}", file=sys.stderr)
        if run is not None:
            run.result["error"] = str(exc)
            run.save()
        return 1
    except KeyboardInterrupt:
        print("error: gpu_check: interrupted", file=sys.stderr)
        return 130
    finally:
        if run is not None:
            run.close()


if __name__ == "__main__":
    sys.exit(main())
