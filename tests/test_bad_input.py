"""Bad input never passes silently, proven through the real stage scripts.

Each test runs `python stages/<stage>.py ...` as a subprocess, in a temporary directory laid out
like the repository (params.yaml, runtime.yaml, data/...), on a tiny synthetic dataset made by
the stages themselves, after damaging one input. It checks what a user sees and what is left:
exit status 1 (130 for Ctrl-C), stderr ending in one `error: ...` line that names the file (and
line or key) and the problem, no traceback from the stage or any of its worker processes, and no
partial output (the output is absent or unchanged, no `.<name>.<random>.tmp` leftovers).
"""
from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from helpers import (ENV, FIX, RUNTIME, SMALLEST, command, commit_repository, copy_repository, environment,
                     frame_chunks, ok, overstate_frame_count, photo, run, run_stage, set_yaml, sof_with_size,
                     spatial_model, terminal_sigint, workspace, write_pyav)
from twostream.classes import HMDB51_CLASSES
from twostream.params import read_yaml

LEFTOVER = re.compile(r"\..+\.([a-z0-9_]{8}\.tmp|old)")


def failed(proc: subprocess.CompletedProcess, status: int = 1) -> str:
    """The one `error: ` line a failed stage ends with, after checking status and no traceback."""
    stderr = proc.stderr
    assert proc.returncode == status, f"exit {proc.returncode}, expected {status}:\n{stderr[-4000:]}"
    assert "Traceback" not in stderr, stderr
    lines = stderr.rstrip("\n").splitlines()
    assert lines and lines[-1].startswith("error: "), stderr[-4000:]
    assert sum(line.startswith("error: ") for line in lines) == 1, stderr[-4000:]
    return lines[-1]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too) with its md5."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob(".*") if LEFTOVER.fullmatch(p.name))


def manifest_row(ws: Path, name: str, row: int = 0) -> tuple[int, str]:
    """(line number, path) of a manifest row (the header is line 1)."""
    frame = pd.read_csv(ws / name)
    return row + 2, frame["path"][row]


# --- 0. the other checked inputs: params, missing inputs, model files ---------------------------

@pytest.mark.parametrize("change, message", [
    ({"train.batch_sise": 8}, ("train.batch_sise: unknown key (known keys here: batch_size, weight_decay, "
                               "schedule, cyclic, amp)")),
    ({"split.val_fraction": 1.5}, "split.val_fraction: must be a fraction in (0, 1), got 1.5"),
])
def test_bad_or_unknown_params_key(tmp_path, change, message):
    ws = workspace(tmp_path)
    params = read_yaml(ws / "params.yaml")
    for dotted, value in change.items():  # as a user edits it: a key params.yaml lacks too (set_yaml refuses one)
        section, key = dotted.split(".")
        params[section][key] = value
    (ws / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert failed(run_stage(ws, "check_params")) == f"error: params.yaml: {message}"
    assert failed(run_stage(ws, "download")) == f"error: params.yaml: {message}"
    assert not (ws / "data").exists()


def test_missing_input_file(ws):
    (ws / "data/manifests/stanford40_val.csv").unlink()
    before = snapshot(ws / "data/images")
    line = failed(run_stage(ws, "pad_resize"))
    assert line == "error: data/manifests/stanford40_val.csv: not found; run `dvc repro` to produce it"
    assert snapshot(ws / "data/images") == before and leftovers(ws) == []


def test_model_file_that_does_not_load(ws):
    (ws / "models").mkdir()
    (ws / "models/stanford40_frames.pt").write_bytes(b"not a model")
    line = failed(run_stage(ws, "hmdb51_frames"))
    assert line.startswith("error: models/stanford40_frames.pt: cannot load the model file (")
    assert line.endswith("); re-run the stage that trains it")
    assert sorted(p.name for p in (ws / "models").iterdir()) == ["stanford40_frames.pt"]
    assert not (ws / "plots").exists()


class Payload:
    """Unpickling this calls `open(marker, "w")`: a file that appears shows that loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_model_file_carrying_code_is_refused_by_evaluate_and_nothing_runs(ws):
    import torch

    (ws / "models").mkdir()
    marker = ws / "payload-ran"
    torch.save({"spec": Payload(marker), "state_dict": {}}, ws / "models/stanford40_frames.pt")
    line = failed(run_stage(ws, "evaluate"))
    assert not marker.exists()
    assert line == ("error: models/stanford40_frames.pt: refused: the model file holds more than weights and plain "
                    "data (Unsupported global: GLOBAL io.open), which could run code if loaded; nothing of it was run: "
                    "delete it and re-run the stage that trains it (or get the file from a source you trust)")
    assert not (ws / "metrics").exists() and not (ws / "plots").exists()


@pytest.mark.slow
def test_pretrained_weights_not_cached_offline(ws):
    # offline: every download goes to a proxy on a closed port; TORCH_HOME is empty
    set_yaml(ws / "params.yaml", {"model.pretrained": "imagenet"})
    closed = "http://127.0.0.1:9"
    env = {**ENV, "TORCH_HOME": str(ws / "torch"), "https_proxy": closed, "HTTPS_PROXY": closed,
           "http_proxy": closed, "HTTP_PROXY": closed, "no_proxy": "", "NO_PROXY": ""}
    proc = subprocess.run(command("stanford40_frames"), cwd=ws, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    line = failed(proc)
    cached = ws / "torch/hub/checkpoints/googlenet-1378be20.pth"
    assert line.startswith(f"error: pretrained weights GoogLeNet_Weights.IMAGENET1K_V1 are not available: {cached} "
                           f"is missing and downloading https://download.pytorch.org/models/googlenet-1378be20.pth "
                           f"failed (")
    assert f"then copy the file to {cached}" in line and "model.pretrained: none" in line
    assert not (ws / "models").exists() and not (ws / "plots").exists()


# --- 1. damaged JPEGs stop pad_resize, naming the file --------------------------------------------

def test_truncated_jpeg_stops_pad_resize(ws):
    _, image = manifest_row(ws, "data/manifests/stanford40_train.csv")
    path = ws / "data/raw/stanford40" / image
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    before = snapshot(ws / "data/images")
    line = failed(run_stage(ws, "pad_resize"))
    assert line == (f"error: data/raw/stanford40/{image}: truncated or corrupt image "
                    f"(libjpeg: Premature end of JPEG file); {FIX}")
    assert snapshot(ws / "data/images") == before and leftovers(ws) == []


def test_garbage_in_a_jpeg_stops_pad_resize(ws):
    _, image = manifest_row(ws, "data/manifests/stanford40_val.csv")
    path = ws / "data/raw/stanford40" / image
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    assert data.rfind(b"\xff\xda") + 20 < middle - 2048 < middle + 2048 < len(data) - 2  # inside the scan data
    data[middle - 2048:middle + 2048] = np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    shutil.rmtree(ws / "data/images")
    line = failed(run_stage(ws, "pad_resize"))
    assert line.startswith(f"error: data/raw/stanford40/{image}: truncated or corrupt image (libjpeg: ")
    assert line.endswith(FIX)
    assert not (ws / "data/images").exists() and leftovers(ws) == []


def test_a_60000x1_jpeg_passes_pad_resize_without_the_10_gib_square(ws):
    # its padded square would be 60000 x 60000 x 3 bytes; the address space is limited to 8 GiB
    row, image = manifest_row(ws, "data/manifests/stanford40_train.csv")
    Image.fromarray(np.full((60000, 40, 3), 255, np.uint8)).save(ws / "data/raw/stanford40" / image, "JPEG")

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))
    ok(subprocess.run(command("pad_resize"), cwd=ws, env={**ENV, "MALLOC_ARENA_MAX": "2"}, capture_output=True,
                      text=True, timeout=300, check=False, preexec_fn=limit_memory))
    out = np.load(ws / "data/images/stanford40_train.npy")[row - 2]
    # 40 white columns at x 29980-30019 of the square; at 32 px each output column spans 1875: columns 15
    # and 16 hold 20 each, 255 * 20 / 1875 = 2.7
    assert (out[:, 15:17] == 3).all() and (np.delete(out, [15, 16], axis=1) == 0).all()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nnewpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n"


@pytest.mark.parametrize("content, problem", [
    ("bomb", "image of 65000x65000 pixels is larger than the 89,478,485 pixels read_rgb decodes (a decompression "
             "bomb?)"),
    ("eps", "cannot decode image (not an image, or not one of the formats read: JPEG, PNG, BMP, TIFF, WEBP)"),
])
def test_a_decompression_bomb_or_an_eps_stops_pad_resize(ws, content, problem):
    _, image = manifest_row(ws, "data/manifests/stanford40_test.csv")
    path = ws / "data/raw/stanford40" / image
    path.write_bytes(sof_with_size(path.read_bytes(), 65000, 65000) if content == "bomb" else EPS)
    before = snapshot(ws / "data/images")
    assert failed(run_stage(ws, "pad_resize")) == f"error: data/raw/stanford40/{image}: {problem}; {FIX}"
    assert snapshot(ws / "data/images") == before and leftovers(ws) == []


def test_unusual_but_valid_images_pass_pad_resize(ws):
    frame = pd.read_csv(ws / "data/manifests/stanford40_train.csv")
    unique = list(dict.fromkeys(frame["path"]))[:5]
    picture = Image.fromarray(photo(90, 120))
    exif = Image.Exif()
    exif[0x0112] = 6
    makers = [lambda p: picture.convert("CMYK").save(p, "JPEG"),
              lambda p: picture.convert("L").save(p, "JPEG", progressive=True, exif=exif),
              lambda p: picture.convert("RGBA").save(p, "PNG"),  # a PNG under the .jpg name
              lambda p: picture.quantize(64).save(p, "PNG"),
              lambda p: Image.fromarray(photo(90, 120)[..., 0].astype(np.uint16) * 257).save(p, "PNG")]
    for name, make in zip(unique, makers):
        make(ws / "data/raw/stanford40" / name)
    ok(run_stage(ws, "pad_resize"))
    images = np.load(ws / "data/images/stanford40_train.npy")
    for name in unique:
        index = frame.index[frame["path"] == name][0]
        assert 40 < images[index].mean() < 200, name  # the picture, not black or washed out


# --- 2. damaged clips stop sample_frames, naming the file; HMDB51's overstated frame count passes ----

def test_truncated_clip_stops_sample_frames(ws):
    _, clip = manifest_row(ws, "data/manifests/hmdb51_train.csv", 1)
    path = ws / "data/raw/hmdb51" / clip
    data = path.read_bytes()
    n = len(frame_chunks(data))
    path.write_bytes(data[:int(len(data) * 0.6)])
    before = snapshot(ws / "data/frames")
    line = failed(run_stage(ws, "sample_frames"))
    assert re.fullmatch(rf"error: data/raw/hmdb51/{re.escape(clip)}: truncated video: the file ends inside frame "
                        rf"\d+ of {n} \(\d+ frames decode; avi: Packet corrupt.*\); {FIX}", line), line
    assert snapshot(ws / "data/frames") == before and leftovers(ws) == []


def test_garbage_in_a_clip_stops_sample_frames(ws):
    _, clip = manifest_row(ws, "data/manifests/hmdb51_test.csv")
    path = ws / "data/raw/hmdb51" / clip
    data = bytearray(path.read_bytes())
    n = len(frame_chunks(bytes(data)))
    middle = len(data) // 2
    data[middle - 2048:middle + 2048] = np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    before = snapshot(ws / "data/frames")
    line = failed(run_stage(ws, "sample_frames"))
    assert re.fullmatch(rf"error: data/raw/hmdb51/{re.escape(clip)}: damaged video: (frame \d+ of {n} does not "
                        rf"decode \(.+\)|only \d+ of the {n} frames in the file's index can be read .*); {FIX}",
                        line), line
    assert snapshot(ws / "data/frames") == before and leftovers(ws) == []


def test_clip_claiming_one_frame_more_than_decodes_passes(ws):
    # HMDB51's AVIs do this (243 claimed, 242 decode); the frame count used is the decodable one
    _, clip = manifest_row(ws, "data/manifests/hmdb51_val.csv")
    path = ws / "data/raw/hmdb51" / clip
    n = len(frame_chunks(path.read_bytes()))
    overstate_frame_count(path, n + 1)
    ok(run_stage(ws, "sample_frames"))
    frames = pd.read_csv(ws / "data/frames/hmdb51_val.csv")
    assert frames.set_index("path")["n_frames"][clip] == n
    # two more is truncation
    overstate_frame_count(path, n + 2)
    line = failed(run_stage(ws, "sample_frames"))
    assert line == (f"error: data/raw/hmdb51/{clip}: truncated video: {n} of {n + 2} frames decode "
                    f"(the file holds fewer frames than its header claims); {FIX}")


def test_unusual_but_valid_clips_pass_sample_frames(ws):
    frame = pd.read_csv(ws / "data/manifests/hmdb51_train.csv")
    clips = list(frame["path"][:4])
    raw = ws / "data/raw/hmdb51"
    write_pyav(raw / clips[0], [*range(8), *range(11, 20)])  # 17 frames with a gap of 3: the header claims 20
    write_pyav(raw / clips[1], range(14), audio=True)
    write_pyav(raw / clips[2], range(15), "libx264", options={"bf": "2", "b-adapt": "0"})  # H.264 in an .avi name
    write_pyav(raw / clips[3], range(9), width=48, height=64)  # portrait, exactly 9 frames
    ok(run_stage(ws, "sample_frames"))
    counts = pd.read_csv(ws / "data/frames/hmdb51_train.csv").set_index("path")["n_frames"]
    assert [counts[c] for c in clips] == [17, 14, 15, 9]


# --- 2b. a full disk: the file size limit (RLIMIT_FSIZE, `ulimit -f`) makes every write past it fail ----

def run_with_file_size_limit(cwd: Path, stage: str, limit: int) -> subprocess.CompletedProcess:
    """The stage with writes limited to `limit` bytes per file; SIGXFSZ keeps its default (it would kill
    the process): the stage itself must ignore it, so a write past the limit fails with EFBIG instead."""
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run(command(stage), cwd=cwd, env={**ENV, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True,
                          text=True, timeout=600, check=False, preexec_fn=limit_file_size)


TOO_LARGE = ("cannot write it: the file would exceed the largest file allowed (the process's file size limit, "
             "`ulimit -f`, or the filesystem's); free space there (or raise the limit) and run again (the previous "
             "output is left as it was)")


def test_file_size_limit_stops_pad_resize_in_one_line(ws):
    before = snapshot(ws / "data/images")
    line = failed(run_with_file_size_limit(ws, "pad_resize", 4096))  # every array is larger
    assert line == f"error: data/images/stanford40_train.npy: {TOO_LARGE}"
    assert snapshot(ws / "data/images") == before and leftovers(ws) == []


def test_file_size_limit_stops_a_training_stage_at_its_checkpoint(ws):
    (ws / "models").mkdir()
    (ws / "models/stanford40_frames.pt").write_bytes(b"the previous model")
    line = failed(run_with_file_size_limit(ws, "stanford40_frames", 2 * 2**20))  # GoogLeNet's weights: 22 MB
    assert line == f"error: models/stanford40_frames.pt: {TOO_LARGE}"
    assert (ws / "models/stanford40_frames.pt").read_bytes() == b"the previous model"
    assert leftovers(ws) == []


@pytest.mark.parametrize("limit, problem", [
    (2048, r"stanford40/JPEGImages/\w+_\d{3}\.jpg: " + re.escape(TOO_LARGE)),  # every JPEG is larger
    (65536, r"hmdb51/\w+/\w+\.avi: cannot write it: OpenCV's video writer stopped after \d+ of \d+ frames "
            r"\(a full disk, a quota or the file size limit\); free space there"),  # JPEGs fit, clips do not
])
def test_file_size_limit_stops_the_synthetic_download_in_one_line(tmp_path, limit, problem):
    ws = workspace(tmp_path / "ws")
    line = failed(run_with_file_size_limit(ws, "download", limit))
    assert re.match(rf"error: data/raw/{problem}", line), line
    # the stanford40 tree that was complete stays; nothing half-written is left
    assert sorted(p.name for p in (ws / "data/raw").iterdir()) == ([] if limit == 2048 else ["stanford40"])
    assert leftovers(ws) == []


# --- 3. labels against the class table; lists naming missing files or unknown classes ---------------

def edit_csv(path: Path, row: int, **values) -> None:
    frame = pd.read_csv(path)
    for column, value in values.items():
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)


def test_label_contradicting_its_class_stops_the_next_stage(ws):
    manifest = ws / "data/manifests/stanford40_test.csv"
    number, image = manifest_row(ws, "data/manifests/stanford40_test.csv", 3)
    frame = pd.read_csv(manifest)
    cls, label = frame["class"][3], int(frame["label"][3])
    edit_csv(manifest, 3, label=(label + 1) % 12)
    before = snapshot(ws / "data/images")
    line = failed(run_stage(ws, "pad_resize"))
    assert line == (f"error: data/manifests/stanford40_test.csv:{number}: {image}: label {(label + 1) % 12} "
                    f"contradicts class {cls} (label {label}); re-run the split stage")
    assert snapshot(ws / "data/images") == before and leftovers(ws) == []


@pytest.mark.slow
def test_label_out_of_range_stops_finetune_before_training(ws):
    # it used to end hmdb51_frames in an IndexError traceback from the loss, leaving a metrics.json of {}
    spatial_model(ws / "models/stanford40_frames.pt", 32)
    number, clip = manifest_row(ws, "data/frames/hmdb51_train.csv", 2)
    cls = pd.read_csv(ws / "data/frames/hmdb51_train.csv")["class"][2]
    edit_csv(ws / "data/frames/hmdb51_train.csv", 2, label=12)
    before = snapshot(ws)
    line = failed(run_stage(ws, "hmdb51_frames"))
    expected = HMDB51_CLASSES.index(cls)
    assert line == (f"error: data/frames/hmdb51_train.csv:{number}: {clip}: label 12 is not an integer in 0..11 "
                    f"(class {cls} is {expected})")
    assert snapshot(ws) == before  # no model, no curves, no metrics.json
    assert not (ws / "models/hmdb51_frames").exists() and not (ws / "plots").exists()


def test_list_naming_a_missing_clip_fails_in_split(ws):
    lists = ws / "data/raw/hmdb51/testTrainMulti_7030_splits"
    lines = (lists / "drink_test_split1.txt").read_text().splitlines()
    number, entry = next((i, line) for i, line in enumerate(lines, start=1) if line.split()[1] == "1")
    video = entry.split()[0]
    (ws / "data/raw/hmdb51/drink" / video).unlink()
    before = snapshot(ws / "data/manifests")
    line = failed(run_stage(ws, "split"))
    assert line == (f"error: data/raw/hmdb51/testTrainMulti_7030_splits/drink_test_split1.txt:{number}: {video} "
                    f"(tagged train) does not exist in data/raw/hmdb51/drink; re-run the download stage, "
                    f"or tag it 0 (unused)")
    assert snapshot(ws / "data/manifests") == before and leftovers(ws) == []


def test_list_naming_a_missing_image_fails_in_split(ws):
    listed = (ws / "data/raw/stanford40/ImageSplits/test.txt").read_text().splitlines()
    (ws / "data/raw/stanford40/JPEGImages" / listed[4]).unlink()
    before = snapshot(ws / "data/manifests")
    line = failed(run_stage(ws, "split"))
    assert line == (f"error: data/raw/stanford40/ImageSplits/test.txt:5: JPEGImages/{listed[4]} does not exist "
                    f"under data/raw/stanford40 (1 listed image(s) missing); re-run the download stage")
    assert snapshot(ws / "data/manifests") == before and leftovers(ws) == []


@pytest.mark.parametrize("name, problem", [
    ("applaudng_003.jpg", "unknown class 'applaudng' in 'applaudng_003.jpg' (not one of the 40 Stanford 40 actions)"),
    ("Applauding-3.jpg", "not a Stanford40 image name (<class>_<NNN>.jpg): 'Applauding-3.jpg'"),
])
def test_unknown_class_in_a_list_fails_in_split(ws, name, problem):
    lists = ws / "data/raw/stanford40/ImageSplits/train.txt"
    lines = lists.read_text().splitlines()
    lines.insert(2, name)
    lists.write_text("\n".join(lines) + "\n")
    before = snapshot(ws / "data/manifests")
    line = failed(run_stage(ws, "split"))
    assert line == f"error: data/raw/stanford40/ImageSplits/train.txt:3: {problem}"
    assert snapshot(ws / "data/manifests") == before and leftovers(ws) == []


def test_other_stanford40_actions_in_the_lists_are_skipped(ws):
    # the real lists hold all 40 actions, one of them spelt watching_TV: parsed, then left out
    lists = ws / "data/raw/stanford40/ImageSplits/train.txt"
    lists.write_text(lists.read_text() + "watching_TV_001.jpg\nfixing_a_car_040.jpg\n")
    ok(run_stage(ws, "split"))
    assert all(not pd.read_csv(p)["path"].str.contains("watching_TV|fixing_a_car").any()
               for p in (ws / "data/manifests").glob("stanford40_*.csv"))


# --- 4. Ctrl-C: one line, exit 130, quiet workers, nothing left; a killed run's leftovers go ---------

def group(pgid: int) -> list[int]:
    """The processes of process group `pgid` (Linux /proc)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def interrupt(cwd: Path, stage: str, ready, sig: int = signal.SIGINT, delay: float = 0.0,
              timeout: float = 120) -> subprocess.CompletedProcess:
    """Start a stage in its own process group, wait until `ready(pid)` (then `delay` s), send `sig`
    to the group as a terminal sends Ctrl-C, and wait until every process of the group has ended."""
    out, err = cwd / ".stage.out", cwd / ".stage.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(command(stage), cwd=cwd, env=ENV, stdout=stdout, stderr=stderr,
                                start_new_session=True, preexec_fn=terminal_sigint)
    try:
        deadline = time.monotonic() + timeout
        while not ready(proc.pid):
            assert proc.poll() is None, f"{stage} ended before it could be interrupted:\n{err.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{stage} never got ready"
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, f"{stage} ended before it could be interrupted:\n{err.read_text()[-3000:]}"
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)
        while group(proc.pid):  # worker processes too: none may outlive the stage
            assert time.monotonic() < deadline, f"processes of {stage} outlived it"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())
    out.unlink()
    err.unlink()
    return result


INTERRUPTED = "error: interrupted (Ctrl-C); no partial output is left: run the stage again"


@pytest.mark.slow
def test_ctrl_c_during_training_with_dataloader_workers(ws):
    set_yaml(ws / "params.yaml", {"stanford40_frames.epochs": 50})
    set_yaml(ws / "runtime.yaml", {"loader_workers": 1})
    err = ws / ".stage.err"
    proc = interrupt(ws, "stanford40_frames", lambda pid: "epoch 1/50" in err.read_text())
    assert failed(proc, status=130) == INTERRUPTED
    assert not (ws / "models").exists() and not (ws / "plots").exists() and leftovers(ws) == []


BIGGER = {"data.synthetic.images_per_class": 30, "data.synthetic.videos_per_class": 8,
          "data.synthetic.min_frames": 30, "data.synthetic.max_frames": 40}


def pending(parent: Path, name: str) -> list[Path]:
    """The temporary siblings of an atomic write of `parent / name` under way."""
    return [p for p in parent.glob(f".{name}.*") if LEFTOVER.fullmatch(p.name)] if parent.is_dir() else []


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds worker processes in /proc")


def workers_started(count: int):
    """Ready once the stage has `count` worker processes (they then spend a second importing)."""
    return lambda pid: len(group(pid)) > count


@pytest.mark.parametrize("moment", ["workers starting", "workers working"])
@needs_proc
def test_ctrl_c_during_download_with_worker_processes(tmp_path, moment):
    ws = workspace(tmp_path, BIGGER, {"prep_processes": 2})
    if moment == "workers starting":
        proc = interrupt(ws, "download", workers_started(2), delay=0.1)
    else:
        proc = interrupt(ws, "download", lambda pid: any(
            any(t.glob("JPEGImages/*.jpg")) for t in pending(ws / "data/raw", "stanford40")))
    assert failed(proc, status=130) == INTERRUPTED
    assert snapshot(ws / "data") == {} and leftovers(ws) == []


@needs_proc
def test_ctrl_c_during_sample_frames_with_worker_processes(ws):
    set_yaml(ws / "runtime.yaml", {"prep_processes": 2})
    shutil.rmtree(ws / "data/frames")
    proc = interrupt(ws, "sample_frames", workers_started(2), delay=0.1)
    assert failed(proc, status=130) == INTERRUPTED
    assert not (ws / "data/frames").exists() and leftovers(ws) == []


def test_the_next_run_removes_what_a_killed_run_left(tmp_path):
    ws = workspace(tmp_path, BIGGER)
    proc = interrupt(ws, "download", lambda pid: any(
        any(t.glob("JPEGImages/*.jpg")) for t in pending(ws / "data/raw", "stanford40")), sig=signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    left = leftovers(ws)
    assert left and all(re.fullmatch(r"data/raw/\.stanford40\.[a-z0-9_]{8}\.tmp", p) for p in left), left
    set_yaml(ws / "params.yaml", {k: SMALLEST[k] for k in BIGGER})  # the same stage again, quicker
    ok(run_stage(ws, "download"))
    assert leftovers(ws) == []
    assert (ws / "data/raw/stanford40/ImageSplits/train.txt").is_file() and (ws / "data/raw/hmdb51").is_dir()


# --- 5. one limit for params validation and the split stage ---------------------------------------

def test_check_params_names_the_real_minimum_of_videos_per_class(tmp_path):
    # between the old check (10) and the real minimum: passed validation, then failed in split
    ws = workspace(tmp_path, {"split.test_fraction": 0.1, "split.val_fraction": 0.1,
                              "data.synthetic.images_per_class": 11, "data.synthetic.videos_per_class": 12})
    line = failed(run_stage(ws, "check_params"))
    assert line == ("error: params.yaml: data.synthetic.videos_per_class: 12 clips per class leave too few "
                    "training clips for a stratified val subset of 12 classes (split.val_fraction 0.1): needs >= 15")
    set_yaml(ws / "params.yaml", {"data.synthetic.videos_per_class": 15})
    assert ok(run_stage(ws, "check_params")).stdout == "params.yaml: valid\n"


def test_the_named_minimum_of_videos_per_class_splits():
    from twostream.data import splits
    from twostream.data.sizes import hmdb51_tag_counts
    from twostream.errors import ListError

    def items(per_class):
        counts = hmdb51_tag_counts(per_class)
        rows = [(f"{c}/clip_{tag}_{k}.avi", label, c, tag) for label, c in enumerate(HMDB51_CLASSES)
                for tag, n in counts.items() for k in range(n)]
        return pd.DataFrame(rows, columns=["path", "label", "class", "tag"])

    for val_groups in ("clip", "source"):
        parts = splits.split_hmdb51(items(15), 0.1, random_state=0, val_groups=val_groups)
        assert all(part["label"].nunique() == 12 for part in parts.values()), val_groups
    with pytest.raises(ListError, match=r"^split.val_fraction: 0.1 of \d+ items gives \d+ held out"):
        splits.split_hmdb51(items(14), 0.1, random_state=0, val_groups="clip")


def test_the_tiny_setting_is_the_named_minimum_of_images_per_class(tmp_path):
    # with half of each split held out, 4 images per class passed validation and split ended in a
    # scikit-learn traceback (a class left with 1 image for the val split)
    ws = workspace(tmp_path, {"data.synthetic.images_per_class": 4})
    line = failed(run_stage(ws, "check_params"))
    assert line == ("error: params.yaml: data.synthetic.images_per_class: 4 is too few for stratified test and "
                    "val subsets of 12 classes (split.test_fraction 0.5, split.val_fraction 0.5): needs >= 5")
    # 5 is SMALLEST's: the `prepared` fixture runs check_params, download and split on it


# --- 6. damaged files are excluded for good; edge cases of params, lists and manifests -------------------

def test_a_damaged_image_is_excluded_for_good_through_exclude_txt(ws):
    frame = pd.read_csv(ws / "data/manifests/stanford40_train.csv")
    image = frame["path"][frame["class"] == frame["class"].value_counts().index[0]].iloc[0]  # of the largest class
    path = ws / "data/raw/stanford40" / image
    path.write_bytes(path.read_bytes()[:200])
    line = failed(run_stage(ws, "pad_resize"))
    assert line.startswith(f"error: data/raw/stanford40/{image}: truncated or corrupt image (")
    assert line.endswith("; replace the file, or leave it out for good: add its path under data/raw to exclude.txt")
    with open(ws / "exclude.txt", "a") as fh:
        fh.write(f"stanford40/{image}  # truncated\n")
    proc = ok(run_stage(ws, "split"))
    assert "stanford40: 1 listed file(s) left out by the exclusion list" in proc.stderr
    manifests = [pd.read_csv(p) for p in (ws / "data/manifests").glob("stanford40_*.csv")]
    assert len(manifests) == 3 and not any((m["path"] == image).any() for m in manifests)
    ok(run_stage(ws, "pad_resize"))


@pytest.mark.parametrize("change, message", [
    ({"seed": 2**32}, "seed: must be <= 4294967295 (numpy's and scikit-learn's random states are 32-bit), "
                      "got 4294967296"),
    ({"split.test_fraction": 0.9999}, "data.synthetic.images_per_class: 5 is too few for stratified test and val "
                                      "subsets of 12 classes (split.test_fraction 0.9999, split.val_fraction 0.5): "
                                      "needs >= 29167"),
    ({"image.size": 100000}, "image.size: must be <= 512 (the prepared arrays grow with its square; the seed uses "
                             "224), got 100000"),
    ({"flow.raft_updates": 10**9}, "flow.raft_updates: must be <= 32 (flow time grows with it; the seed uses 12), "
                                   "got 1000000000"),
])
def test_edge_case_params_end_in_one_line(tmp_path, change, message):
    ws = workspace(tmp_path, change)
    assert failed(run_stage(ws, "check_params")) == f"error: params.yaml: {message}"


def test_a_params_file_that_is_not_utf8_ends_in_one_line(tmp_path):
    ws = workspace(tmp_path)
    text = (ws / "params.yaml").read_text()
    (ws / "params.yaml").write_bytes(b"# r\xe9sum\xe9 (Latin-1)\n" + text.encode())
    for stage in ("check_params", "download"):
        line = failed(run_stage(ws, stage))
        assert line == "error: params.yaml:1: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert not (ws / "data").exists()


def test_a_runtime_file_that_is_not_utf8_ends_in_one_line(tmp_path):
    ws = workspace(tmp_path)
    (ws / "runtime.yaml").write_bytes((ws / "runtime.yaml").read_bytes() + b"# \xff\n")
    line = failed(run_stage(ws, "download"))
    assert re.fullmatch(r"error: runtime\.yaml:\d+: not UTF-8 text \(byte 0xff\); save the file as UTF-8", line)


def test_split_lists_with_a_byte_order_mark_are_accepted(ws):
    before = snapshot(ws / "data/manifests")
    for path in [ws / "data/raw/stanford40/ImageSplits/train.txt",
                 *(ws / "data/raw/hmdb51/testTrainMulti_7030_splits").iterdir()]:
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    ok(run_stage(ws, "split"))
    assert snapshot(ws / "data/manifests") == before


def test_a_list_entry_leaving_the_raw_root_fails_in_split(ws):
    lists = ws / "data/raw/stanford40/ImageSplits/train.txt"
    lists.write_text("../../../../etc/applauding_001.jpg\n" + lists.read_text())
    before = snapshot(ws / "data/manifests")
    line = failed(run_stage(ws, "split"))
    assert line == ("error: data/raw/stanford40/ImageSplits/train.txt:1: '../../../../etc/applauding_001.jpg' must be "
                    "a file name without a directory (a list names images of JPEGImages/ by file name)")
    assert snapshot(ws / "data/manifests") == before


def test_a_manifest_path_leaving_the_raw_root_stops_the_next_stage(ws):
    path = ws / "data/manifests/stanford40_val.csv"
    frame = pd.read_csv(path)
    outside = "../../../outside/applauding_001.jpg"
    frame.loc[1, "path"] = outside
    frame.to_csv(path, index=False)
    before = snapshot(ws / "data/images")
    line = failed(run_stage(ws, "pad_resize"))
    assert line == (f"error: data/manifests/stanford40_val.csv:3: {outside!r} leaves the dataset's root (a '..', '.' "
                    f"or empty path component): paths must be relative and stay inside it; re-run the split stage")
    assert snapshot(ws / "data/images") == before


def test_an_exclusion_survives_dvc_repro(tmp_path):
    """data/raw is the download stage's output, so editing its lists is undone by `dvc repro`; exclude.txt, a
    dependency of split, is not: the excluded image stays out of every manifest after a forced re-run."""
    dest = copy_repository(tmp_path / "repo", skip=("data/", "models/", "metrics/", "plots/", "tests/"))
    set_yaml(dest / "params.yaml", SMALLEST)
    set_yaml(dest / "runtime.yaml", {**RUNTIME, "downloads.cache_dir": str(dest / ".cache")})
    env = {**environment(dest), "OMP_NUM_THREADS": "1"}
    commit_repository(dest, env, "tiny")
    dvc = [sys.executable, "-m", "dvc", "repro"]
    run([*dvc, "split"], dest, env)

    def listed() -> set[str]:
        return {p for m in (dest / "data/manifests").glob("stanford40_*.csv") for p in pd.read_csv(m)["path"]}

    frame = pd.read_csv(dest / "data/manifests/stanford40_train.csv")
    image = frame["path"][frame["class"] == frame["class"].value_counts().index[0]].iloc[0]
    assert image in listed()
    with open(dest / "exclude.txt", "a") as fh:
        fh.write(f"stanford40/{image}\n")
    out = run([*dvc, "split"], dest, env)
    assert "Running stage 'split'" in out and "Running stage 'download'" not in out
    assert image not in listed()
    out = run([*dvc, "--force", "split"], dest, env)  # data/raw written afresh, lists and all
    assert "Running stage 'download'" in out and "Running stage 'split'" in out
    assert (dest / "data/raw/stanford40" / image).is_file() and image not in listed()
