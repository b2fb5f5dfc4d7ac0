"""Export on a fresh (untrained) model file: formats, refusals, sidecar. Parity on trained models with real
inputs is in test_predict.py."""
import json

import numpy as np
import pytest
import torch

from twostream.checkpoint import checkpoint_meta, preprocess_meta, save_checkpoint
from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
from twostream.errors import InputError
from twostream.export import example_inputs, export_model, load_exported, sidecar_path
from twostream.models import ModelSpec, build_model


@pytest.fixture(scope="module")
def flow_model(tmp_path_factory):
    torch.manual_seed(0)
    spec = ModelSpec("temporal", NUM_CLASSES, False, False)
    model = build_model(spec)
    path = tmp_path_factory.mktemp("m") / "flow.pt"
    save_checkpoint(path, model, checkpoint_meta(spec, model, "hmdb51", HMDB51_CLASSES, 32, {},
                                                 preprocess=preprocess_meta("video", 32)), 1,
                    [{"train_accuracy": 0.1, "train_loss": 1.0, "val_accuracy": 0.1, "val_loss": 1.0}])
    return path, model.eval()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_flow_model_exports_with_a_free_batch_size(flow_model, tmp_path, fmt):
    path, model = flow_model
    out = tmp_path / f"m.{fmt}"
    sidecar = export_model(path, fmt, out)
    assert json.loads(sidecar_path(out).read_text()) == sidecar
    assert sidecar["inputs"] == [{"name": "flow", "shape": ["N", 24, 32, 32], "dtype": "float32"}]
    assert sidecar["normalization_in_graph"] is False and sidecar["classes"] == list(HMDB51_CLASSES)
    (x,) = example_inputs("temporal", 32, batch=5, seed=1)  # another batch size than the trace's
    with torch.no_grad():
        eager = model(x).numpy()
    assert np.abs(load_exported(out, fmt)(x.numpy()) - eager).max() < 1e-4


def test_unknown_or_unsupported_format_is_refused(flow_model, tmp_path):
    from twostream.export import check_supported

    with pytest.raises(InputError, match="unknown export format 'tflite'"):
        export_model(flow_model[0], "tflite", tmp_path / "m.tflite")
    with pytest.raises(InputError, match="a late_fusion model cannot be exported to onnx: it is two models"):
        check_supported("late_fusion", "onnx", "hmdb51_late_fusion")
    assert not list(tmp_path.iterdir())
