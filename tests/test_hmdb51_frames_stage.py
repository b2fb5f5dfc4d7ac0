"""The hmdb51_frames stage trains the five frame positions one after the other in one process; each position's
model must be what that position alone, in a process of its own, would train."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from helpers import ENV, command, ok, run_stage, set_yaml, spatial_model
from twostream.params import FRAME_POSITIONS


def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_each_position_trains_as_if_alone(ws):
    spatial_model(ws / "models/stanford40_frames.pt", 32)
    ok(run_stage(ws, "hmdb51_frames"))
    models = ws / "models/hmdb51_frames"
    assert sorted(p.stem for p in models.glob("*.pt")) == sorted(FRAME_POSITIONS)
    assert all((ws / "plots/training/hmdb51_frames" / p / "val/accuracy.tsv").is_file() for p in FRAME_POSITIONS)
    together = {p: weights(models / f"{p}.pt") for p in FRAME_POSITIONS}
    assert not same(together["first"], together["last"])  # the positions train on different frames

    last = FRAME_POSITIONS[-1]  # trained after the other four in the stage's process
    alone = ws / "alone"
    ok(run_stage(ws, "hmdb51_frames", "--positions", last, "--models", str(alone), "--curves", str(ws / "alone_curves")))
    assert [p.stem for p in (alone / "hmdb51_frames").glob("*.pt")] == [last]
    assert same(weights(alone / "hmdb51_frames" / f"{last}.pt"), together[last])


@pytest.mark.slow
def test_positions_share_one_process_group_under_torchrun(ws):
    # torchrun_processes 2 (gloo on the CPU): the stage joins torchrun's process group once for all its positions
    spatial_model(ws / "models/stanford40_frames.pt", 32)
    set_yaml(ws / "runtime.yaml", {"torchrun_processes": 2})
    launched = [sys.executable, "-m", "twostream.launch", *command("hmdb51_frames", "--positions", "first", "last")[1:]]
    proc = subprocess.run(launched, cwd=ws, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    ok(proc)
    assert proc.stderr.count("process group: rank 0 of 2") == 1  # joined once (rank 0 logs it), not per position
    assert sorted(p.name for p in (ws / "models/hmdb51_frames").iterdir()) == ["first.pt", "last.pt"]
    assert not same(weights(ws / "models/hmdb51_frames/first.pt"), weights(ws / "models/hmdb51_frames/last.pt"))
