"""Model files: deterministic bytes, a faithful rebuild, clear errors for bad files."""
import dataclasses

import pytest
import torch

from twostream.checkpoint import (REQUIRED, checkpoint_meta, load_checkpoint, load_model, rebuild, save_checkpoint,
                                  spec_of)
from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
from twostream.errors import InputError, MissingInputError
from twostream.models import ModelSpec, build_model, count_parameters

HISTORY = [{"epoch": 1, "lr": 1e-3, "train_loss": 2.0, "train_accuracy": 0.2, "val_loss": 2.1,
            "val_accuracy": 0.25, "best": True},
           {"epoch": 2, "lr": 1e-3, "train_loss": 1.5, "train_accuracy": 0.4, "val_loss": 2.2,
            "val_accuracy": 0.2, "best": False}]


@pytest.fixture(scope="module")
def trained():
    """A spatial model with weights unlike a fresh one's and a non-default input transform."""
    torch.manual_seed(0)
    spec = ModelSpec("spatial", NUM_CLASSES, False, True)
    model = build_model(spec)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    meta = checkpoint_meta(spec, model, "hmdb51", HMDB51_CLASSES, 64, {"seed": 0}, position="middle")
    return spec, model, meta


def test_meta_records_what_rebuilds_and_reports_the_model(trained):
    spec, model, meta = trained
    assert meta == {"spec": spec.as_dict(), "dataset": "hmdb51", "classes": list(HMDB51_CLASSES), "image_size": 64,
                    "num_params": count_parameters(model), "params": {"seed": 0}, "position": "middle"}


def test_same_model_same_bytes_wherever_it_is_written(tmp_path, trained):
    _, model, meta = trained
    first, second = tmp_path / "a" / "m.pt", tmp_path / "b" / "other_name.pt"
    save_checkpoint(first, model, meta, 1, HISTORY)
    data = first.read_bytes()
    save_checkpoint(first, model, meta, 1, HISTORY)  # again, onto itself
    save_checkpoint(second, model, meta, 1, HISTORY)
    assert first.read_bytes() == data and second.read_bytes() == data
    assert sorted(p.name for p in first.parent.iterdir()) == ["m.pt"]  # no temporary file left
    save_checkpoint(second, model, meta, 2, HISTORY)  # what it records is in the bytes
    assert second.read_bytes() != data


def test_load_model_rebuilds_equal_weights(tmp_path, trained):
    spec, model, meta = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, meta, 1, HISTORY)
    loaded, checkpoint = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.transform_input is True  # the spec's, not pretrained=False's default
    assert spec_of(checkpoint) == spec
    assert checkpoint["best_epoch"] == 1 and checkpoint["epochs"] == 2 and checkpoint["history"] == HISTORY
    assert checkpoint["position"] == "middle" and set(REQUIRED) <= set(checkpoint)
    want, got = model.state_dict(), loaded.state_dict()
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)
    torch.manual_seed(1)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model.eval()(x), rtol=0, atol=0)
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())


def test_rebuild_never_downloads(monkeypatch, tmp_path, trained):
    """A checkpoint of an ImageNet-initialised model rebuilds without the ImageNet weights."""
    from twostream import models

    def no_download(weights):
        raise AssertionError("rebuild must not load pretrained weights")

    monkeypatch.setattr(models, "load_pretrained", no_download)
    spec, model, meta = trained
    checkpoint = {**meta, "spec": dataclasses.replace(spec, pretrained=True).as_dict(),
                  "state_dict": model.state_dict()}
    rebuilt = rebuild(checkpoint)
    assert rebuilt.transform_input is True
    torch.testing.assert_close(rebuilt.fc.weight, model.fc.weight, rtol=0, atol=0)


def test_truncated_file_names_the_file(tmp_path, trained):
    _, model, meta = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, meta, 1, HISTORY)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=rf"^{path}: cannot load the model file .*re-run the stage that trains it$"):
        load_model(path)


def test_missing_and_foreign_files(tmp_path, trained):
    with pytest.raises(MissingInputError, match=rf"^{tmp_path / 'none.pt'}: model not found"):
        load_checkpoint(tmp_path / "none.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"kind": "spatial", "state_dict": {}}, foreign)  # e.g. a model file of an older version
    with pytest.raises(InputError, match=rf"^{foreign}: not a twostream model file of this version "
                                         r"\(lacks spec, dataset, classes"):
        load_checkpoint(foreign)
    torch.save([1, 2, 3], foreign)
    with pytest.raises(InputError, match="not a twostream model file"):
        load_checkpoint(foreign)


def test_weights_that_do_not_fit_the_spec_name_the_file(tmp_path, trained):
    spec, model, meta = trained
    path = tmp_path / "m.pt"
    wrong = {**meta, "spec": dataclasses.replace(spec, num_classes=5).as_dict()}
    save_checkpoint(path, model, wrong, 1, HISTORY)
    with pytest.raises(InputError, match=rf"^{path}: the weights do not fit the recorded model"):
        load_model(path)


class Payload:
    """Unpickling this calls `open(marker, "w")`: a file that appears shows that loading ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def payload_model_file(path, marker, trained):
    """A model file with every key of a real one, and a pickled program in its spec."""
    _, model, meta = trained
    save_checkpoint(path, model, meta, 1, HISTORY)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["spec"] = Payload(marker)
    torch.save(checkpoint, path)
    return path


def test_a_model_file_carrying_code_is_refused_in_one_line_and_nothing_runs(tmp_path, trained):
    marker = tmp_path / "ran"
    path = payload_model_file(tmp_path / "m.pt", marker, trained)
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(InputError) as caught:
        load_model(path)
    message = str(caught.value)
    assert "\n" not in message and not marker.exists()
    assert message == (f"{path}: refused: the model file holds more than weights and plain data (Unsupported global: "
                       f"GLOBAL io.open), which could run code if loaded; nothing of it was run: delete it and re-run "
                       f"the stage that trains it (or get the file from a source you trust)")


def test_every_saved_checkpoint_loads_with_weights_only(tmp_path, trained):
    _, model, meta = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, {**meta, "extra": {"size": 224, "mean": (0.485, 0.456, 0.406), "none": None}},
                    1, HISTORY)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["extra"] == {"size": 224, "mean": (0.485, 0.456, 0.406), "none": None}


def test_saving_anything_but_plain_data_is_a_bug_caught_before_writing(tmp_path, trained):
    import numpy as np

    _, model, meta = trained
    path = tmp_path / "m.pt"
    with pytest.raises(TypeError, match=r"checkpoint\['params'\]\['lr'\]: numpy.float64 is not plain data"):
        save_checkpoint(path, model, {**meta, "params": {"lr": np.float64(0.1)}}, 1, HISTORY)
    with pytest.raises(TypeError, match=r"checkpoint\['history'\]\[0\]: key 1 is not a string"):
        save_checkpoint(path, model, meta, 1, [{1: 2.0}])
    assert not path.exists()


def test_preprocess_record_is_plain_data_that_loads_weights_only(tmp_path, trained):
    from twostream.checkpoint import preprocess_meta, read_flow_settings
    from twostream.flow import flow_settings
    from twostream.io import write_json
    from twostream.params import FlowParams

    spec, model, _ = trained
    write_json(tmp_path / "flow.json", flow_settings(FlowParams("raft_large", 12, True)))
    record = preprocess_meta("video", 64, "middle", read_flow_settings(tmp_path / "flow.json"))
    meta = checkpoint_meta(spec, model, "hmdb51", HMDB51_CLASSES, 64, {"seed": 0, "train": {"lr": 1e-3}},
                           position="middle", preprocess=record)
    save_checkpoint(tmp_path / "m.pt", model, meta, 1, HISTORY)
    loaded = torch.load(tmp_path / "m.pt", map_location="cpu", weights_only=True)  # no pickled code
    assert loaded["preprocess"] == record and record["flow"]["raft_updates"] == 12
    assert record["normalization"] == {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    assert (record["source"], record["image_size"], record["frame_position"]) == ("video", 64, "middle")
    with pytest.raises(ValueError, match="source must be image or video"):
        preprocess_meta("audio", 64)


def test_missing_or_foreign_flow_settings(tmp_path):
    from twostream.checkpoint import read_flow_settings

    with pytest.raises(MissingInputError, match="flow.json: flow settings not found; re-run the flow stage"):
        read_flow_settings(tmp_path / "flow.json")
    (tmp_path / "flow.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not the flow stage's settings record"):
        read_flow_settings(tmp_path / "flow.json")
