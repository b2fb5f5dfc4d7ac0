"""Models: exact sizes, pretrained loading (offline, via a stand-in state dict), fusion wiring."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import GoogLeNet_Weights, ResNet18_Weights, googlenet, resnet18

from twostream import models
from twostream.classes import NUM_CLASSES
from twostream.errors import WeightsUnavailable
from twostream.models import (
    FLOW_CHANNELS,
    MODEL_KINDS,
    ModelSpec,
    TwoStream,
    build_model,
    count_parameters,
    inflate_conv1,
    spatial_model,
    temporal_model,
)
from twostream.params import ModelParams


@pytest.fixture(scope="module")
def imagenet_standins() -> dict:
    """Randomly initialised 1000-class state dicts shaped like torchvision's ImageNet checkpoints."""
    torch.manual_seed(1)
    g = googlenet(weights=None, num_classes=1000, aux_logits=True, init_weights=True)
    r = resnet18(weights=None, num_classes=1000)
    # Non-trivial BatchNorm statistics, so loading them is visible.
    for sd_model in (g, r):
        for m in sd_model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return {
        GoogLeNet_Weights.IMAGENET1K_V1: {k: v.clone() for k, v in g.state_dict().items()},
        ResNet18_Weights.IMAGENET1K_V1: {k: v.clone() for k, v in r.state_dict().items()},
    }


@pytest.fixture
def fake_weights(monkeypatch, imagenet_standins):
    calls = []

    def fake_load(weights):
        calls.append(weights)
        return {k: v.clone() for k, v in imagenet_standins[weights].items()}

    monkeypatch.setattr(models, "load_pretrained", fake_load)
    return calls


def test_parameter_counts():
    s = spatial_model(NUM_CLASSES, pretrained=False)
    t = temporal_model(NUM_CLASSES, pretrained=False)
    assert NUM_CLASSES == 12
    assert count_parameters(s) == 5_612_204
    assert count_parameters(t) == 11_248_524
    assert count_parameters(TwoStream(s, t, NUM_CLASSES)) == 18_441_784


def test_build_model_kinds():
    assert MODEL_KINDS == ("spatial", "temporal", "twostream") and FLOW_CHANNELS == 24
    assert count_parameters(build_model(ModelSpec("spatial", NUM_CLASSES, False, False))) == 5_612_204
    assert count_parameters(build_model(ModelSpec("temporal", NUM_CLASSES, False, False))) == 11_248_524
    assert count_parameters(build_model(ModelSpec("twostream", NUM_CLASSES, False, False))) == 18_441_784
    t = temporal_model(NUM_CLASSES, False, in_channels=6)  # build_model always builds 24-channel flow stacks
    assert t.conv1.in_channels == 6
    with pytest.raises(ValueError, match="unknown model kind"):
        ModelSpec("audio", NUM_CLASSES, False, False)
    with pytest.raises(TypeError, match="bool"):
        ModelSpec("spatial", NUM_CLASSES, "none", False)


@pytest.mark.parametrize("pretrained, kind, transform_input", [
    ("imagenet", "spatial", True), ("imagenet", "twostream", True), ("imagenet", "temporal", False),
    ("none", "spatial", False), ("none", "twostream", False), ("none", "temporal", False),
])
def test_fresh_spec_follows_model_pretrained(pretrained, kind, transform_input):
    spec = ModelSpec.fresh(kind, NUM_CLASSES, ModelParams(pretrained=pretrained))
    assert spec == ModelSpec(kind, NUM_CLASSES, pretrained == "imagenet", transform_input)
    assert spec.pretrained is (pretrained == "imagenet") and spec.transform_input is transform_input
    assert ModelSpec.from_dict(spec.as_dict()) == spec
    assert spec.as_dict() == {"kind": kind, "num_classes": NUM_CLASSES, "pretrained": pretrained == "imagenet",
                              "transform_input": transform_input}


@pytest.mark.parametrize("transform_input", [False, True])
def test_build_model_sets_the_spec_transform_input(transform_input):
    """A rebuilt model (pretrained False) keeps the input transform its weights were trained with."""
    s = build_model(ModelSpec("spatial", NUM_CLASSES, False, transform_input))
    assert s.transform_input is transform_input
    f = build_model(ModelSpec("twostream", NUM_CLASSES, False, transform_input))
    assert isinstance(f, TwoStream) and f.spatial.transform_input is transform_input


def test_build_twostream_joins_given_streams():
    s = spatial_model(NUM_CLASSES, pretrained=False)
    t = temporal_model(NUM_CLASSES, pretrained=False)
    f = build_model(ModelSpec("twostream", NUM_CLASSES, False, False), streams=(s, t))
    assert f.spatial is s and f.temporal.layer4 is t.layer4
    with pytest.raises(ValueError, match="spec says transform_input=True, the spatial stream has False"):
        build_model(ModelSpec("twostream", NUM_CLASSES, False, True), streams=(s, t))


def test_inflate_conv1_known_weights():
    g = torch.Generator().manual_seed(0)
    rgb = torch.randn(64, 3, 7, 7, generator=g)
    before = rgb.clone()
    w = inflate_conv1(rgb, 24)
    assert w.shape == (64, 24, 7, 7)
    mean = (rgb[:, 0] + rgb[:, 1] + rgb[:, 2]) / 3
    for c in range(24):
        torch.testing.assert_close(w[:, c], mean)
    assert torch.equal(rgb, before)


def test_temporal_pretrained_inflates_and_loads(fake_weights, imagenet_standins):
    sd = imagenet_standins[ResNet18_Weights.IMAGENET1K_V1]
    t = temporal_model(NUM_CLASSES, pretrained=True)
    assert fake_weights == [ResNet18_Weights.IMAGENET1K_V1]
    assert t.conv1.weight.shape == (64, 24, 7, 7) and t.conv1.bias is None
    expected = sd["conv1.weight"].mean(dim=1, keepdim=True).expand(-1, 24, -1, -1)
    torch.testing.assert_close(t.conv1.weight.detach(), expected)
    own = t.state_dict()
    for k, v in sd.items():
        if k.startswith(("conv1.", "fc.")):
            continue
        assert torch.equal(own[k], v), k
    assert t.fc.out_features == NUM_CLASSES
    assert count_parameters(t) == 11_248_524
    assert t(torch.randn(2, 24, 64, 64)).shape == (2, NUM_CLASSES)


def test_spatial_pretrained_loads_all_but_fc(fake_weights, imagenet_standins):
    sd = imagenet_standins[GoogLeNet_Weights.IMAGENET1K_V1]
    s = spatial_model(NUM_CLASSES, pretrained=True)
    assert fake_weights == [GoogLeNet_Weights.IMAGENET1K_V1]
    assert s.transform_input is True
    assert s.aux1 is None and s.aux2 is None
    own = s.state_dict()
    expected = {k: v for k, v in sd.items() if not k.startswith(("aux1.", "aux2.", "fc."))}
    assert set(own) - {"fc.weight", "fc.bias"} == set(expected)
    for k, v in expected.items():
        assert torch.equal(own[k], v), k
    assert s.fc.weight.shape == (NUM_CLASSES, 1024)
    assert count_parameters(s) == 5_612_204


def test_spatial_transform_input_rule():
    assert spatial_model(NUM_CLASSES, pretrained=False).transform_input is False


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_unavailable_weights_propagate(monkeypatch, kind):
    def unavailable(weights):
        raise WeightsUnavailable(f"pretrained weights {weights} are not available")

    monkeypatch.setattr(models, "load_pretrained", unavailable)
    with pytest.raises(WeightsUnavailable, match="not available"):
        build_model(ModelSpec(kind, NUM_CLASSES, pretrained=True, transform_input=kind == "spatial"))


def _input_sensitive(model: nn.Module) -> nn.Module:
    """Kaiming-initialised convolutions: GoogLeNet's own init (std 0.01) all but erases the
    input by the last block, so logits would hardly depend on it."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return model


def _fusion(pretrained_spatial: bool = False) -> TwoStream:
    torch.manual_seed(0)
    s = _input_sensitive(spatial_model(NUM_CLASSES, pretrained=pretrained_spatial))
    t = temporal_model(NUM_CLASSES, pretrained=False)
    return TwoStream(s, t, NUM_CLASSES).eval()


def test_fusion_is_mean_of_heads():
    f = _fusion()
    torch.manual_seed(2)
    frames, flow = torch.randn(2, 3, 64, 64), torch.randn(2, 24, 64, 64)
    with torch.no_grad():
        fusion_logits, spatial_logits = f.forward_heads(frames, flow)
        out = f(frames, flow)
    assert not torch.allclose(fusion_logits, spatial_logits)
    torch.testing.assert_close(out, (fusion_logits + spatial_logits) / 2)


@pytest.mark.parametrize("size", [64, 96, 224])
def test_feature_maps_meet(size):
    f = _fusion()
    frames, flow = torch.randn(1, 3, size, size), torch.randn(1, 24, size, size)
    with torch.no_grad():
        fs, ft = f.spatial_features(frames), f.temporal_features(flow)
        assert fs.shape == (1, 1024, size // 32, size // 32)
        assert ft.shape == (1, 512, size // 32, size // 32)
        assert f(frames, flow).shape == (1, NUM_CLASSES)
        assert f.spatial(frames).shape == (1, NUM_CLASSES)
        t = temporal_model(NUM_CLASSES, pretrained=False).eval()
        assert t(flow).shape == (1, NUM_CLASSES)


def test_feature_map_mismatch_is_a_clear_error():
    f = _fusion()
    with torch.no_grad(), pytest.raises(ValueError, match=r"3x3.*4x4"):
        f(torch.randn(1, 3, 100, 100), torch.randn(1, 24, 100, 100))


def test_fusion_shares_weights_and_drops_temporal_fc():
    s = spatial_model(NUM_CLASSES, pretrained=False)
    t = temporal_model(NUM_CLASSES, pretrained=False)
    f = TwoStream(s, t, NUM_CLASSES)
    assert f.spatial is s and f.temporal.layer4 is t.layer4 and f.temporal.conv1 is t.conv1
    assert not any(p is t.fc.weight for p in f.parameters())
    assert "temporal.layer1.0.conv1.weight" in f.state_dict()


@pytest.mark.parametrize("pretrained", [False, True])
def test_fusion_applies_spatial_input_transform(fake_weights, pretrained):
    f = _fusion(pretrained_spatial=pretrained)
    assert bool(f.spatial.transform_input) is pretrained  # TwoStream.transform_input is gone: one home
    assert not hasattr(f, "transform_input")
    torch.manual_seed(3)
    frames, flow = torch.randn(2, 3, 64, 64), torch.randn(2, 24, 64, 64)
    with torch.no_grad():
        _, spatial_logits = f.forward_heads(frames, flow)
        standalone = f.spatial(frames)
        assert f.spatial.transform_input is pretrained
        # The transform matters for these weights: switching it changes the output.
        f.spatial.transform_input = not pretrained
        toggled = f.spatial(frames)
    torch.testing.assert_close(spatial_logits, standalone)
    assert not torch.allclose(standalone, toggled)


def test_temporal_accepts_flow_stack():
    t = temporal_model(NUM_CLASSES, pretrained=False)
    t.train()
    out = t(torch.randn(2, 24, 64, 64))
    assert out.shape == (2, NUM_CLASSES)
    out.sum().backward()
    assert t.conv1.weight.grad is not None
