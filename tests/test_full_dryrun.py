"""The full setting's dry run: params-full.yaml applied exactly as `make full` applies it, then
params-dryrun.yaml (only what must change offline), as `dvc exp run -S ...` in a temporary copy of
the repository. Every stage runs the real code of the full setting at 224 px: ImageNet weights and
RAFT-large loaded through twostream.weights from TORCH_HOME (random stand-ins under torchvision's
file names), the seed's augmentation and split procedure, the fusion on 7x7 feature maps.
"""
import json
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import ROOT, all_stages, commit_repository, copy_repository, environment, run, set_yaml, stages_run
from twostream.data.sizes import smallest_sizes
from twostream.params import apply_overrides, parse_params, read_overrides, read_yaml

DRYRUN_TIMEOUT = 3600  # seconds

# What the dry run may change in the full setting, and why: no real data offline (synthetic data,
# generated split lists), and time (size, clip length, epochs, RAFT updates).
DRYRUN_KEYS = {"data.source", "split.lists", "data.synthetic.images_per_class", "data.synthetic.videos_per_class",
               "data.synthetic.min_frames", "data.synthetic.max_frames", "flow.raft_updates",
               "stanford40_frames.epochs", "hmdb51_frames.epochs", "hmdb51_flow.epochs", "hmdb51_twostream.epochs",
               "video_test.clips"}


def test_dryrun_changes_only_what_must_change_and_uses_the_smallest_sizes():
    dryrun = read_overrides(ROOT / "params-dryrun.yaml")
    assert set(dryrun) <= DRYRUN_KEYS
    params = parse_params(apply_overrides(apply_overrides(read_yaml(ROOT / "params.yaml"),
                                                          read_overrides(ROOT / "params-full.yaml")), dryrun))
    smallest = smallest_sizes(params.split)
    assert (params.data.synthetic.images_per_class, params.data.synthetic.videos_per_class) == (
        smallest["images_per_class"], smallest["videos_per_class"])
    assert (params.image.size, params.flow.method, params.flow.pretrained, params.model.pretrained) == (
        224, "raft_large", True, "imagenet")
    assert params.augment.color_jitter == [0.4, 0.4, 0.4, 0.3] and params.split.test_fraction == 0.1


@pytest.fixture(scope="module")
def dryrun(tmp_path_factory):
    from twostream.weights import write_standins

    dest = copy_repository(tmp_path_factory.mktemp("full"))
    set_yaml(dest / "runtime.yaml", {"progress": False, "downloads.cache_dir": str(dest / ".cache")})
    torch_home = tmp_path_factory.mktemp("torch_home")
    standins = write_standins(torch_home)
    env = {**environment(dest), "TORCH_HOME": str(torch_home)}
    commit_repository(dest, env, "demo")
    # exactly as `make full` builds its command, with the dry run's overrides applied after the full ones
    overrides = run([sys.executable, "-m", "twostream.params", "params-full.yaml", "params-dryrun.yaml"], dest, env)
    # RAFT-large at 224 px on a CPU: minutes on 2 free cores, much longer on a busy machine
    proc = subprocess.run([sys.executable, "scripts/stage_times.py", sys.executable, "-m", "dvc", "exp", "run",
                           *shlex.split(overrides)], cwd=dest, env=env, capture_output=True, text=True,
                          timeout=DRYRUN_TIMEOUT)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"dvc exp run failed:\n{output[-5000:]}"
    print(output[output.index("stage times"):])  # shown with -s (make dryrun)
    return dest, output, standins


@pytest.mark.fullsetting
@pytest.mark.slow
def test_every_stage_runs_the_full_setting(dryrun):
    dest, output, standins = dryrun
    assert stages_run(output) == all_stages(dest)
    params = read_yaml(dest / "params.yaml")  # the experiment's params, as dvc exp run applied them
    assert (params["image"]["size"], params["flow"]["method"], params["model"]["pretrained"]) == (
        224, "raft_large", "imagenet")
    assert params["stanford40_frames"]["lr"] == 1e-4 and params["augment"]["rotation_degrees"] == 15.0


@pytest.mark.fullsetting
@pytest.mark.slow
def test_weights_load_through_torch_home_with_a_loud_warning(dryrun):
    dest, output, standins = dryrun
    assert sorted(p.name for p in standins) == sorted(
        ["googlenet-1378be20.pth", "resnet18-f37072fd.pth", "raft_large_C_T_SKHT_V2-ff5fadd5.pth"])
    for path in standins:
        assert re.search(rf"WARNING twostream.weights: STAND-IN WEIGHTS: \S*{re.escape(path.name)} is a random "
                         rf"stand-in", output), path.name
    # the flow stage loads RAFT once for its three subsets and the K test clips of video-level testing (one
    # pass per clip; an even K has no middle clip to copy from the one-clip stacks)
    clips = read_overrides(ROOT / "params-dryrun.yaml")["video_test.clips"]
    assert clips % 2 == 0
    flow_log = output[output.index("Running stage 'flow'"):]
    flow_log = flow_log[:flow_log.index("Running stage", 1)]
    assert flow_log.count("raft_large: loaded pretrained weights") == 1
    assert flow_log.count("flow: method raft_large on cpu") == 3 + clips


@pytest.mark.fullsetting
@pytest.mark.slow
def test_models_are_224_px_imagenet_initialised_and_fuse_7x7_maps(dryrun):
    from twostream.checkpoint import load_model

    dest = dryrun[0]
    model, checkpoint = load_model(dest / "models" / "hmdb51_twostream.pt")
    assert checkpoint["image_size"] == 224 and checkpoint["epochs"] == 1
    assert checkpoint["spec"]["transform_input"] is True  # ImageNet GoogLeNet weights
    for name in ("stanford40_frames.pt", "hmdb51_flow.pt"):
        assert load_model(dest / "models" / name)[1]["spec"]["pretrained"] is True
    frames = np.load(dest / "data" / "frames" / "hmdb51_test_positions.npy", mmap_mode="r")
    flow = np.load(dest / "data" / "flow" / "hmdb51_test.npy", mmap_mode="r")
    assert frames.shape[2:] == (224, 224, 3) and flow.shape[1:] == (8, 224, 224, 3)
    from twostream.datasets import _chw
    from twostream.transforms import flow_stack, frame_transform

    seen = {}
    model.fusion.conv.register_forward_hook(lambda m, inputs, out: seen.update(fused=tuple(inputs[0].shape)))
    model.eval()
    with torch.inference_mode():
        model(frame_transform(None)(_chw(frames[0, 2]))[None], flow_stack(_chw(flow[0]))[None])
    assert seen["fused"] == (1, 1024 + 512, 7, 7)


@pytest.mark.fullsetting
@pytest.mark.slow
def test_metrics_are_written(dryrun):
    dest = dryrun[0]
    accuracy = json.loads((dest / "metrics" / "accuracy.json").read_text())
    video = accuracy.pop("video_accuracy")
    hmdb51 = {"hmdb51_frames", "hmdb51_flow", "hmdb51_twostream", "hmdb51_late_fusion"}
    assert set(accuracy) == {"stanford40_frames"} | hmdb51 and set(video) == hmdb51
    assert all(0 <= v <= 1 for v in [*accuracy.values(), *video.values()])
    record = json.loads((dest / "metrics" / "hmdb51_twostream.json").read_text())
    assert record["params"] == 18_441_784 and record["epochs"] == 1
    assert (dest / "metrics" / "results.md").read_text().startswith("# Results")
