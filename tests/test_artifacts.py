"""dvc.yaml's `artifacts:` (DVC's model registry): every trained model is declared, and a collaborator can
fetch one from a remote with `dvc artifacts get` and run `twostream predict` on it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from twostream.model_table import TRAINED, model_path
from twostream.params import FRAME_POSITIONS

ROOT = Path(__file__).resolve().parents[1]


def artifacts():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]


def stage_outputs():
    outs = set()
    for stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].values():
        outs |= {o if isinstance(o, str) else next(iter(o)) for o in stage.get("outs", [])}
    return outs


def test_every_trained_model_is_a_declared_model_artifact():
    declared = artifacts()
    files = {str(model_path(Path("models"), m.name, p)) for m in TRAINED
             for p in (FRAME_POSITIONS if m.name == "hmdb51_frames" else [None])}
    assert {a["path"] for a in declared.values()} == files
    assert files <= stage_outputs()  # each is a pipeline output, so it is in dvc.lock and on the remote
    for name, artifact in declared.items():
        assert artifact["type"] == "model" and len(artifact["desc"]) > 20 and artifact["labels"], name


def test_dvc_reads_the_artifacts():
    from dvc.repo import Repo

    read = Repo(str(ROOT)).artifacts.read()
    (names,) = read.values()
    assert set(names) == set(artifacts())
    assert names["hmdb51_twostream"].type == "model"


def run(cmd, cwd, env):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.mark.slow
def test_artifacts_get_from_a_remote_then_predict(tmp_path):
    """A project repository whose model is pushed to a (local) DVC remote; another directory fetches it
    by artifact name, as docs/using-models.md shows, and classifies a video with it."""
    from helpers import write_textured_avi
    from twostream.checkpoint import checkpoint_meta, preprocess_meta, save_checkpoint
    from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
    from twostream.flow import flow_settings
    from twostream.models import ModelSpec, build_model
    from twostream.params import FlowParams

    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dvc = [sys.executable, "-m", "dvc"]
    repo, remote, user = tmp_path / "project", tmp_path / "remote", tmp_path / "collaborator"
    (repo / "models").mkdir(parents=True)
    user.mkdir()
    torch.manual_seed(0)
    spec = ModelSpec("temporal", NUM_CLASSES, False, False)
    model = build_model(spec)
    record = preprocess_meta("video", 32, flow=flow_settings(FlowParams("dis", 12, True)))
    save_checkpoint(repo / "models/hmdb51_flow.pt", model,
                    checkpoint_meta(spec, model, "hmdb51", HMDB51_CLASSES, 32, {}, preprocess=record), 1,
                    [{"train_accuracy": 0.1, "train_loss": 1.0, "val_accuracy": 0.1, "val_loss": 1.0}])
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"artifacts": {"hmdb51_flow": artifacts()["hmdb51_flow"]}}))
    run(["git", "init", "-q"], repo, env)
    run([*dvc, "init", "-q"], repo, env)
    run([*dvc, "remote", "add", "-d", "storage", str(remote)], repo, env)
    run([*dvc, "add", "models/hmdb51_flow.pt"], repo, env)  # the pipeline's dvc.lock tracks it the same way
    run([*dvc, "push"], repo, env)
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "model"], repo, env)
    # a version of the model (GTO's tag convention, which `dvc artifacts get` and DVC Studio read)
    run(["git", "tag", "-a", "hmdb51_flow@v1.0.0", "-m", "Registering artifact hmdb51_flow version v1.0.0"], repo, env)

    run([*dvc, "artifacts", "get", str(repo), "hmdb51_flow", "-o", "hmdb51_flow.pt"], user, env)  # latest version
    assert (user / "hmdb51_flow.pt").read_bytes() == (repo / "models/hmdb51_flow.pt").read_bytes()
    write_textured_avi(user / "clip.avi", n=30)
    proc = run([sys.executable, "-m", "twostream.console", "predict", "clip.avi", "--model", "hmdb51_flow.pt",
                "--clips", "2", "--json"], user, env)
    record = json.loads(proc.stdout)
    proc = subprocess.run([sys.executable, "-m", "twostream.console", "predict", "clip.avi", "--model",
                           "hmdb51_flow.pt"], cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stderr == ("error: params.yaml: no params file to read video_test.clips "
                                                    "(--clips) from; pass it on the command line\n")
    assert record["frames"] == 30 and record["clips"] == 2 and set(record["video"]) == set(HMDB51_CLASSES)
