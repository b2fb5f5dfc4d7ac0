"""What several test modules share: the one tiny setting, YAML edits, running stages and DVC in a
temporary copy of the repository, and media files written on purpose (images, clips).

Test modules import it as `helpers` (pytest puts tests/ on sys.path); fixtures live in conftest.py.
No test module imports another.
"""
from __future__ import annotations

import fractions
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from twostream.params import apply_overrides, read_yaml

ROOT = Path(__file__).resolve().parents[1]
FIX = "replace the file, or leave it out for good: add its path under data/raw to exclude.txt"

# --- the one tiny setting ---------------------------------------------------------------------------

# The whole pipeline on tiny synthetic data: 32 px, one epoch per training stage (the `repo` fixture).
TINY = {
    "data.synthetic.images_per_class": 20,
    "data.synthetic.videos_per_class": 16,
    "data.synthetic.min_frames": 12,
    "data.synthetic.max_frames": 16,
    "image.size": 32,
    "train.batch_size": 16,
    "stanford40_frames.epochs": 1,
    "hmdb51_frames.epochs": 1,
    "hmdb51_flow.epochs": 1,
    "hmdb51_twostream.epochs": 1,
}
# TINY at the smallest valid data sizes, for the stage-by-stage tests (`workspace`): 5 images and 3 clips
# per class with half of each split held out (check_params names these minimums).
SMALLEST = {**TINY,
            "data.synthetic.images_per_class": 5,
            "data.synthetic.videos_per_class": 3,
            "split.test_fraction": 0.5,
            "split.val_fraction": 0.5,
            "train.batch_size": 8}
TRAINING = {"stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream"}


def set_yaml(path: Path, changes: dict) -> None:
    """Set dotted keys in a YAML file (params.yaml or runtime.yaml); an unknown key is an error."""
    data = apply_overrides(read_yaml(path), changes, source=Path(path).name)
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


# --- DVC in a temporary copy of the repository ------------------------------------------------------

def run(cmd, cwd, env, check=True):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=3600)
    if check:
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc if not check else proc.stdout + proc.stderr


def stages_run(output):
    return set(re.findall(r"Running stage '([^']+)'", output))


def stages_restored(output):
    return set(re.findall(r"Stage '([^']+)' is cached - skipping run", output))


def environment(dest):
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t", "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(dest)}


def copy_repository(dest: Path, skip=("data/", "models/", "metrics/", "plots/")) -> Path:
    """The project's files (committed or not, git-ignored ones left out) copied to `dest`, without
    dvc.lock and without the paths under `skip`."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if source.is_file() and not name.startswith(tuple(skip)):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / "dvc.lock").unlink(missing_ok=True)
    return dest


def commit_repository(dest: Path, env, message: str) -> None:
    """`dest` as a new git repository with everything in it committed."""
    run(["git", "init", "-q"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", message], dest, env)


def all_stages(dest):
    """Stage names as dvc reports them (a foreach stage expands to name@item)."""
    names = set()
    for name, stage in yaml.safe_load((dest / "dvc.yaml").read_text())["stages"].items():
        names |= {f"{name}@{item}" for item in stage["foreach"]} if "foreach" in stage else {name}
    return names


# --- stage scripts run one by one in a workspace laid out like the repository -----------------------

RUNTIME = {"device": "cpu", "loader_workers": 0, "prep_processes": 1, "progress": False}
STAGE_ARGS = {
    "check_params": [],
    "download": ["--out", "data/raw"],
    "split": ["--raw", "data/raw", "--exclude", "exclude.txt", "--out", "data/manifests"],
    "pad_resize": ["--raw", "data/raw/stanford40", "--manifests", "data/manifests", "--out", "data/images"],
    "sample_frames": ["--raw", "data/raw/hmdb51", "--manifests", "data/manifests", "--out", "data/frames"],
    "stanford40_frames": ["--images", "data/images", "--out", "models/stanford40_frames.pt",
                      "--curves", "plots/training/stanford40_frames"],
    "hmdb51_frames": ["--frames", "data/frames", "--init", "models/stanford40_frames.pt", "--models", "models",
                 "--curves", "plots/training/hmdb51_frames"],
    "evaluate": ["--images", "data/images", "--frames", "data/frames", "--flow", "data/flow", "--models", "models",
                 "--metrics", "metrics", "--plots", "plots"],
}
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def workspace(dest: Path, params: dict | None = None, runtime: dict | None = None) -> Path:
    """params.yaml (SMALLEST, then `params`), runtime.yaml (RUNTIME, then `runtime`) and exclude.txt in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("params.yaml", "runtime.yaml", "exclude.txt"):
        shutil.copy(ROOT / name, dest / name)
    set_yaml(dest / "params.yaml", {**SMALLEST, **(params or {})})
    set_yaml(dest / "runtime.yaml", {**RUNTIME, **(runtime or {})})
    return dest


def command(stage: str, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "stages" / f"{stage}.py"), "--params", "params.yaml",
            "--runtime", "runtime.yaml", *STAGE_ARGS[stage], *extra]


def run_stage(cwd: Path, stage: str, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command(stage, *extra), cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout, check=False)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"{proc.args} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def spatial_model(path: Path, size: int) -> None:
    """A Stanford40 frame model file, as stanford40_frames writes it (untrained)."""
    from twostream.checkpoint import checkpoint_meta, save_checkpoint
    from twostream.classes import NUM_CLASSES, STANFORD40_CLASSES
    from twostream.models import ModelSpec, build_model
    from twostream.params import load_params

    spec = ModelSpec.fresh("spatial", NUM_CLASSES, load_params(path.parents[1] / "params.yaml").model)
    model = build_model(spec)
    save_checkpoint(path, model, checkpoint_meta(spec, model, "stanford40", STANFORD40_CLASSES, size, {}), 1, [])


def terminal_sigint() -> None:
    """`preexec_fn` of a stage the test interrupts: Ctrl-C's default action, as a terminal gives it.
    A test run started in the background by a non-interactive shell (`pytest ... &`) ignores SIGINT,
    and an ignored signal stays ignored across fork and exec: the stage would never see Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# --- media written on purpose ------------------------------------------------------------------------

def photo(height=300, width=400, seed=0):
    """A photo-like RGB image: blurred noise over a gradient (compresses like a real picture)."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 1.5)
    gradient = np.tile(np.linspace(0, 255, width, dtype=np.uint8)[None, :, None], (height, 1, 3))
    return cv2.addWeighted(noise, 0.6, gradient, 0.4, 0)


def sof_with_size(data, height, width):
    """A JPEG whose frame header (SOF0/SOF2) claims `height` x `width`; the scan is unchanged."""
    data = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = data.find(marker)
        if at > 0:
            data[at + 5:at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
            return bytes(data)
    raise AssertionError("no SOF marker")


def write_avi(path, n, width=64, height=48):
    """A clip whose frame i has grey level 10 * i (so frames can be recognised after decoding)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FMP4"), 30, (width, height))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((height, width, 3), 10 * i, np.uint8))
    writer.release()
    return path


def write_textured_avi(path, n=45, width=320, height=240, seed=0):
    """An HMDB51-like clip: 320x240 FMP4 at 30 fps, a blurred texture panning 2 px per frame."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 2 * n, 3), dtype=np.uint8), (0, 0), 3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FMP4"), 30, (width, height))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.ascontiguousarray(base[:, 2 * i: 2 * i + width]))
    writer.release()
    return path


def write_pyav(path, stamps, codec="mpeg4", width=64, height=48, audio=False, options=None):
    """A clip written by PyAV (FFmpeg): frame k has grey level 6 * k (a white square moves along its bottom
    edge), at the timestamps `stamps` in frames of 1/30 s; optionally an MP3 audio track interleaved."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = fractions.Fraction(1, 30)
        stream.bit_rate = 5_000_000  # grey levels survive the encoding within a level or two
        sound = container.add_stream("mp3", rate=22050) if audio else None
        for k, pts in enumerate(stamps):
            image = np.full((height, width, 3), 6 * k, np.uint8)
            x = (2 * k) % (width - 8)
            image[height - 8:, x:x + 8] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts
            for packet in stream.encode(frame):
                container.mux(packet)
            if sound is not None:
                tone = np.sin(np.arange(735) * 0.05 * (k + 1)).astype(np.float32)[None]
                chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                chunk.sample_rate = 22050
                for packet in sound.encode(chunk):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            for packet in sound.encode():
                container.mux(packet)
    return path


def overstate_frame_count(path, claimed):
    """Patch the AVI headers (avih.dwTotalFrames, strh.dwLength, dmlh) to claim `claimed` frames,
    as HMDB51's files do (their container reports one frame more than decodes)."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, claimed)
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, claimed)
    if (dmlh := data.find(b"dmlh")) >= 0:
        struct.pack_into("<I", data, dmlh + 8, claimed)
    path.write_bytes(bytes(data))


def frame_chunks(data):
    """Offsets of the frame chunks ('00dc') in an AVI's movi list, in file order."""
    i, end, offsets = data.find(b"movi") + 4, data.find(b"idx1"), []
    while i < end:
        size = struct.unpack_from("<I", data, i + 4)[0]
        if data[i:i + 4] == b"00dc":
            offsets.append(i)
        i += 8 + size + (size & 1)
    return offsets
