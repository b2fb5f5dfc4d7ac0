"""Pretrained weights through TORCH_HOME, and the stand-ins that let the real loading path run offline."""
import logging
import os

import pytest
import torch
from torchvision.models import GoogLeNet_Weights, ResNet18_Weights
from torchvision.models.optical_flow import Raft_Large_Weights

from twostream import weights as weights_mod
from twostream.errors import WeightsUnavailable
from twostream.models import spatial_model, temporal_model
from twostream.weights import (is_standin, load_pretrained, prepare_torch_home, standin_builders, standin_marker,
                               weights_path, write_standins)

FULL = (GoogLeNet_Weights.IMAGENET1K_V1, ResNet18_Weights.IMAGENET1K_V1, Raft_Large_Weights.DEFAULT)


@pytest.fixture(scope="module")
def standin_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("torch_home")
    return home, write_standins(home)


@pytest.fixture
def torch_home(standin_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(standin_home[0]))
    return standin_home[0]


def test_standins_have_torchvision_names_keys_and_shapes(standin_home):
    home, written = standin_home
    assert set(standin_builders()) == set(FULL)
    assert [p.name for p in written] == [os.path.basename(w.url) for w in FULL]
    for weights, path in zip(FULL, written):
        assert path.parent == home / "hub" / "checkpoints" and is_standin(path)
        state = torch.load(path, weights_only=True)
        reference = standin_builders()[weights]().state_dict()
        assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in reference.items()}
    assert any(k.startswith("aux1.") for k in torch.load(written[0], weights_only=True))  # as the real file


def test_standins_are_deterministic_and_never_replace_a_real_file(tmp_path):
    first = write_standins(tmp_path / "a")
    second = write_standins(tmp_path / "b")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes()
    real = first[1]
    standin_marker(real).unlink()  # now it counts as a real (downloaded) file
    real.write_bytes(b"real")
    assert real not in write_standins(tmp_path / "a")
    assert real.read_bytes() == b"real" and not is_standin(real)


def test_cached_file_loads_without_hash_check_and_warns_loudly(torch_home, caplog):
    """torch.hub checks the hash in a file name only when it downloads: a cached stand-in loads with
    check_hash=True (its sha256 does not start with the name's prefix), so the marker is what tells."""
    import hashlib

    path = weights_path(ResNet18_Weights.IMAGENET1K_V1)
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert not hashlib.sha256(path.read_bytes()).hexdigest().startswith("f37072fd")
    with caplog.at_level(logging.WARNING, logger="twostream.weights"):
        state = load_pretrained(ResNet18_Weights.IMAGENET1K_V1)
    assert "conv1.weight" in state
    assert any(r.levelno == logging.WARNING and "STAND-IN WEIGHTS" in r.message and path.name in r.message
               for r in caplog.records)


def test_models_build_from_standins_through_the_real_path(torch_home, caplog):
    with caplog.at_level(logging.WARNING, logger="twostream.weights"):
        spatial = spatial_model(12, pretrained=True)
        temporal = temporal_model(12, pretrained=True)
    assert spatial.transform_input and temporal.conv1.weight.shape == (64, 24, 7, 7)
    reference = torch.load(weights_path(ResNet18_Weights.IMAGENET1K_V1), weights_only=True)
    torch.testing.assert_close(temporal.layer1[0].conv1.weight, reference["layer1.0.conv1.weight"])
    assert sum("STAND-IN WEIGHTS" in r.message for r in caplog.records) == 2


def test_missing_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("no network")
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailable, match=r"resnet18-f37072fd.pth is missing"):
        load_pretrained(ResNet18_Weights.IMAGENET1K_V1)


def test_prepare_torch_home_links_real_weights_and_stands_in_for_the_rest(tmp_path, caplog):
    cache = tmp_path / "cache"
    real = write_standins(cache)[1]  # pretend resnet18 was downloaded: unmarked
    standin_marker(real).unlink()
    for path in write_standins(cache):
        path.unlink()
        standin_marker(path).unlink()
    with caplog.at_level(logging.WARNING, logger="twostream.weights"):
        local = prepare_torch_home(tmp_path / "local", cache)
    checkpoints = local / "hub" / "checkpoints"
    assert (checkpoints / real.name).resolve() == real.resolve() and not is_standin(checkpoints / real.name)
    assert is_standin(checkpoints / "googlenet-1378be20.pth")
    assert is_standin(checkpoints / "raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    warned = " ".join(r.message for r in caplog.records)
    assert "googlenet-1378be20.pth" in warned and "resnet18" not in warned
    # a later run with the real file now cached replaces the stand-in by a link
    googlenet = write_standins(cache)[0]
    standin_marker(googlenet).unlink()
    prepare_torch_home(local, cache)
    assert not is_standin(checkpoints / googlenet.name)
    assert (checkpoints / googlenet.name).resolve() == googlenet.resolve()
    assert weights_mod.main.__doc__


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):  # unpickling calls open(marker, "w"): a file that appears shows code ran
        return open, (self.marker, "w")


def test_a_cached_weights_file_carrying_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    weights = ResNet18_Weights.IMAGENET1K_V1
    path = weights_path(weights)
    path.parent.mkdir(parents=True)
    marker = tmp_path / "ran"
    torch.save({"conv1.weight": torch.zeros(1), "fc.bias": _Payload(marker)}, path)
    torch.load(path, weights_only=False)  # the payload is live: an unsafe load runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(WeightsUnavailable) as caught:
        load_pretrained(weights)
    assert not marker.exists()
    assert str(caught.value) == (
        f"{path}: refused: the weights file of ResNet18_Weights.IMAGENET1K_V1 holds more than tensors and plain "
        f"data (Unsupported global: GLOBAL io.open), which could run code if loaded; nothing of it was run: delete "
        f"it and let torchvision download the real file (https://download.pytorch.org/models/resnet18-f37072fd.pth)")
