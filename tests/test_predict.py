"""twostream predict and export on models trained by the pipeline's own stages (tiny setting).

The module fixture runs the data stages and the four training stages once on the smallest synthetic
setting (one epoch each, 32 px, the frame model at one position). Then:

- predict's probabilities equal evaluate's (its library functions on the data stages' arrays) for every
  HMDB51 model and the late fusion, at one clip and at video level, and for the Stanford 40 model on
  its test images;
- the checkpoints record how inputs are made and load with torch.load(weights_only=True);
- bad files (not media, too short, truncated, an image for a video model) are one line each, the
  other files go on, exit status 1; a model without the record is one line;
- the TorchScript and ONNX exports match the eager model within 1e-4 on real inputs.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import ENV, command, ok, workspace, write_avi, write_textured_avi

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"hmdb51_flow.epochs": 1, "hmdb51_twostream.epochs": 1, "video_test.clips": 3}
STAGES = [
    ("check_params",), ("download",), ("split",), ("pad_resize",), ("sample_frames",),
    ("flow", "--frames", "data/frames", "--out", "data/flow"),
    ("stanford40_frames",),
    ("hmdb51_frames", "+", "--positions", "middle"),
    ("hmdb51_flow", "--flow", "data/flow", "--out", "models/hmdb51_flow.pt", "--curves", "plots/flow"),
    ("hmdb51_twostream", "--frames", "data/frames", "--flow", "data/flow", "--spatial", "models/hmdb51_frames/middle.pt",
     "--temporal", "models/hmdb51_flow.pt", "--out", "models/hmdb51_twostream.pt", "--curves", "plots/fusion"),
]
MODELS = {"hmdb51_frames": ["models/hmdb51_frames/middle.pt"], "hmdb51_flow": ["models/hmdb51_flow.pt"],
          "hmdb51_twostream": ["models/hmdb51_twostream.pt"],
          "hmdb51_late_fusion": ["models/hmdb51_frames/middle.pt", "models/hmdb51_flow.pt"]}


def stage_command(name, *args):
    if args and args[0] == "+":  # test_bad_input's arguments, and more
        return command(name, *args[1:])
    if args:  # stages test_bad_input does not know: the script and its arguments as dvc.yaml has them
        return [sys.executable, str(ROOT / "stages" / f"{name}.py"), "--params", "params.yaml",
                "--runtime", "runtime.yaml", *args]
    return command(name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    ws = workspace(tmp_path_factory.mktemp("predict"), PARAMS)
    for name, *args in STAGES:
        ok(subprocess.run(stage_command(name, *args), cwd=ws, env=ENV, capture_output=True, text=True, timeout=600))
    return ws


def predict_cli(ws, *args, timeout=300):
    return subprocess.run([sys.executable, "-m", "twostream.console", "predict", *map(str, args)], cwd=ws, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_checkpoints_record_preprocessing_and_load_weights_only(trained):
    flow = json.loads((trained / "data/flow/flow.json").read_text())
    assert flow["method"] == "dis" and flow["frames"] == 9 and flow["raft_updates"] is None
    expected = {
        "models/stanford40_frames.pt": ("image", None, None),
        "models/hmdb51_frames/middle.pt": ("video", "middle", None),
        "models/hmdb51_flow.pt": ("video", None, flow),
        "models/hmdb51_twostream.pt": ("video", "middle", flow),
    }
    for name, (source, position, flow_record) in expected.items():
        checkpoint = torch.load(trained / name, map_location="cpu", weights_only=True)
        record = checkpoint["preprocess"]
        assert (record["source"], record["frame_position"], record["flow"]) == (source, position, flow_record), name
        assert record["image_size"] == 32 == checkpoint["image_size"]
        assert record["normalization"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _evaluate_probabilities(ws):
    """Evaluate's scores (its library functions, as `evaluate.test_models` calls them) per HMDB51 model:
    name -> (one-clip probabilities, video probabilities, manifest paths), and Stanford 40's."""
    from twostream.checkpoint import load_model
    from twostream.data.manifests import manifest_name, read_manifest
    from twostream.evaluate import TestData, late_fusion, predict_dataset, video_logits
    from twostream.model_table import BY_NAME
    from twostream.params import load_runtime

    runtime = load_runtime(ws / "runtime.yaml")
    images, frames, flow = ws / "data/images", ws / "data/frames", ws / "data/flow"
    data = TestData(images, frames, flow)
    softmax = lambda x: torch.from_numpy(np.asarray(x)).double().softmax(-1).numpy()  # noqa: E731
    out, clip_logits, one_logits = {}, {}, {}
    for name in ("hmdb51_frames", "hmdb51_flow", "hmdb51_twostream"):
        entry = BY_NAME[name]
        model, _ = load_model(ws / MODELS[name][0])
        one_logits[name], _ = predict_dataset(model, data.test_set(entry, "middle"), 8, runtime, False)
        clips, k = data.test_clips(entry)
        clip_logits[name], _ = predict_dataset(model, clips, 8, runtime, False)
        out[name] = softmax(one_logits[name]), softmax(video_logits(clip_logits[name], k))
    fused = ("hmdb51_frames", "hmdb51_flow")
    out["hmdb51_late_fusion"] = (softmax(late_fusion(*(one_logits[n] for n in fused))),
                                 softmax(video_logits(late_fusion(*(clip_logits[n] for n in fused)), k)))
    paths = [ws / "data/raw/hmdb51" / p for p in read_manifest(frames / manifest_name("hmdb51", "test"), "hmdb51")["path"]]
    model, _ = load_model(ws / "models/stanford40_frames.pt")
    s40, _ = predict_dataset(model, data.test_set(BY_NAME["stanford40_frames"], "middle"), 8, runtime, False)
    s40_paths = [ws / "data/raw/stanford40" / p
                 for p in read_manifest(images / manifest_name("stanford40", "test"), "stanford40")["path"]]
    return out, paths, k, (softmax(s40), s40_paths)


def test_predict_equals_evaluate_at_one_clip_and_video_level(trained):
    from twostream.predict import Predictor, load_member

    expected, paths, k, (s40, s40_paths) = _evaluate_probabilities(trained)
    assert len(paths) >= 12 and k == 3
    for name, files in MODELS.items():
        predictor = Predictor([load_member(trained / f) for f in files], clips=k)
        clip, video = expected[name]
        for i, path in enumerate(paths):
            prediction = predictor.predict(path)
            np.testing.assert_allclose(prediction.clip, clip[i], atol=1e-5, err_msg=f"{name} one clip {path}")
            np.testing.assert_allclose(prediction.video, video[i], atol=1e-5, err_msg=f"{name} video {path}")
    predictor = Predictor([load_member(trained / "models/stanford40_frames.pt")], clips=k)
    for i, path in enumerate(s40_paths[:12]):
        np.testing.assert_allclose(predictor.predict(path).clip, s40[i], atol=1e-5, err_msg=str(path))


def test_cli_text_json_and_the_default_model(trained):
    video = next((trained / "data/raw/hmdb51").rglob("*.avi"))
    proc = predict_cli(trained, video, "--top-k", "2")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{video} (") and lines[1].startswith("  one clip: ") and \
        lines[2].startswith("  3 clips: "), proc.stdout
    assert all(len(line.split()) == 2 + 2 * 2 for line in lines[1:3]), proc.stdout  # label, 2 x (class, p)
    proc = predict_cli(trained, video, "--json", "--clips", "2", "--model", "hmdb51_late_fusion")
    record = json.loads(proc.stdout)
    assert record["clips"] == 2 and len(record["clip"]) == len(record["video"]) == 12
    assert abs(sum(record["video"].values()) - 1) < 1e-6 and len(record["model"]) == 2


def test_bad_files_are_one_line_each_and_the_others_go_on(trained, tmp_path):
    good = next((trained / "data/raw/hmdb51").rglob("*.avi"))
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(good, folder / "good.avi")
    (folder / "notes.mp4").write_text("not a video\n")
    write_avi(folder / "short.avi", 5)
    write_textured_avi(tmp_path / "whole.avi", n=30)
    data = (tmp_path / "whole.avi").read_bytes()
    (folder / "cut.avi").write_bytes(data[:len(data) * 2 // 3])
    image = next((trained / "data/raw/stanford40/JPEGImages").glob("*.jpg"))
    shutil.copy(image, folder / "still.jpg")
    proc = predict_cli(trained, folder, tmp_path / "missing.avi")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 6, proc.stderr
    for name, problem in (("notes.mp4", "cannot open video"), ("short.avi", "only 5 decodable frame"),
                          ("cut.avi", "truncated video"), ("still.jpg", "an image, but the model"),
                          ("missing.avi", "no such file")):
        assert sum(name in e and problem in e for e in errors) == 1, (name, errors)
    assert errors[-1] == "error: 5 of 6 file(s) could not be classified (see above)"
    assert proc.stdout.startswith(f"{folder / 'good.avi'} (") and proc.stdout.count(" clips: ") == 1


def test_stanford40_model_classifies_images_not_videos(trained, tmp_path):
    image = next((trained / "data/raw/stanford40/JPEGImages").glob("*.jpg"))
    png = tmp_path / "still.png"
    from PIL import Image
    Image.open(image).save(png)
    video = next((trained / "data/raw/hmdb51").rglob("*.avi"))
    proc = predict_cli(trained, image, png, video, "--model", "stanford40_frames", "--json")
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["source"] for r in records[:2]] == ["image", "image"] and "error" in records[2]
    assert "classifies still images" in records[2]["error"]
    # the PNG holds the JPEG's decoded pixels: the same prediction
    assert np.allclose(list(records[0]["clip"].values()), list(records[1]["clip"].values()), atol=1e-6)


def test_a_model_without_the_preprocessing_record_is_one_line(trained, tmp_path):
    checkpoint = torch.load(trained / "models/hmdb51_flow.pt", map_location="cpu", weights_only=True)
    del checkpoint["preprocess"]
    old = tmp_path / "old.pt"
    torch.save(checkpoint, old)
    video = next((trained / "data/raw/hmdb51").rglob("*.avi"))
    proc = predict_cli(trained, video, "--model", old)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {old}: the model file does not record how its inputs were prepared (this version needs preprocess "
        f"record version 1; the file has none); re-run the stage that trains it (`dvc repro -f -s <stage>`) "
        f"with this version"]
    proc = predict_cli(trained, video, "--model", "models/stanford40_frames.pt", "--model", "models/hmdb51_flow.pt")
    assert proc.returncode == 1 and proc.stderr.startswith("error: the late fusion averages a frame model and a flow")


def test_mp4_of_a_clip_gives_nearly_the_avi_prediction(trained, tmp_path):
    import av

    from twostream.predict import Predictor, load_member

    source = sorted((trained / "data/raw/hmdb51").rglob("*.avi"))[0]
    mp4 = tmp_path / "clip.mp4"
    with av.open(str(source)) as src, av.open(str(mp4), "w") as dst:
        stream = dst.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"crf": "10"} if stream.name == "libx264" else {}
        count = 0
        for frame in src.decode(video=0):
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
            count += 1
        for packet in stream.encode():
            dst.mux(packet)
    predictor = Predictor([load_member(trained / "models/hmdb51_twostream.pt")], clips=3)
    a, b = predictor.predict(source), predictor.predict(mp4)
    assert a.frames == b.frames == count
    assert np.abs(a.video - b.video).max() < 0.1  # re-encoding changes pixels a little, the scores little


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_matches_the_eager_model_on_real_inputs(trained, tmp_path, fmt):
    from twostream.checkpoint import load_model
    from twostream.data.video import sample_video
    from twostream.export import load_exported
    from twostream.flow import flow_images, flow_params_of
    from twostream.transforms import flow_stack, normalize

    videos = sorted((trained / "data/raw/hmdb51").rglob("*.avi"))[:6]
    model_file = trained / "models/hmdb51_twostream.pt"
    model, checkpoint = load_model(model_file)
    samples = [sample_video(v, 32) for v in videos]
    frames = normalize()(torch.from_numpy(np.stack([s.positions[2] for s in samples])).permute(0, 3, 1, 2))
    flow = flow_images(np.stack([s.flow_frames for s in samples]), flow_params_of(checkpoint["preprocess"]["flow"]),
                       progress=False)
    stacks = torch.stack([flow_stack(torch.from_numpy(v).permute(0, 3, 1, 2)) for v in flow])
    with torch.no_grad():
        eager = model.eval()(frames, stacks).numpy()
    out = tmp_path / f"twostream.{fmt}"
    proc = subprocess.run([sys.executable, "-m", "twostream.console", "export", str(model_file), "--format", fmt,
                           "--out", str(out)], cwd=trained, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sidecar = json.loads((tmp_path / f"twostream.{fmt}.json").read_text())
    assert sidecar["normalization_in_graph"] is False and [i["name"] for i in sidecar["inputs"]] == ["frames", "flow"]
    assert sidecar["inputs"][1]["shape"] == ["N", 24, 32, 32] and sidecar["preprocess"] == checkpoint["preprocess"]
    exported = load_exported(out, fmt)(frames.numpy(), stacks.numpy())
    assert exported.shape == eager.shape == (6, 12)
    assert np.abs(exported - eager).max() < 1e-4
    assert np.abs(eager).max() > 1e-3  # not a trivial all-zero comparison


def test_export_of_a_kind_without_the_format_is_one_line(trained, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "twostream.console", "export", "hmdb51_late_fusion", "--format",
                           "onnx", "--out", str(tmp_path / "x.onnx")], cwd=trained, env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: hmdb51_late_fusion: a late_fusion model cannot be exported to onnx")
    assert not (tmp_path / "x.onnx").exists()
