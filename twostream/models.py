"""The three networks: spatial (GoogLeNet), temporal (ResNet-18 on stacked flow), two-stream fusion.

All three are built from torchvision's `googlenet` and `resnet18` builders. Pretrained
ImageNet weights always come through `twostream.weights.load_pretrained`, which raises
`WeightsUnavailable` when they are neither cached nor downloadable; there is no silent
fallback to random initialisation.

Input normalisation. Every input (RGB frame or flow image) is ImageNet-normalised
(mean 0.485/0.456/0.406, std 0.229/0.224/0.225). torchvision's ImageNet GoogLeNet weights
were ported from a network trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5), and
GoogLeNet's `transform_input` re-maps ImageNet-normalised input to that scale. The rule:

* `spatial_model(pretrained=True)` sets `transform_input=True` (the ported weights need it);
* `spatial_model(pretrained=False)` sets `transform_input=False` (a network trained from
  scratch learns on the ImageNet-normalised input directly).

The flag lives on the GoogLeNet itself (`model.transform_input`), so it is saved with the
model's configuration and `TwoStream` applies exactly the same input transform before its
spatial trunk as the standalone spatial model does (it calls the wrapped model's own
transform). ResNet-18 has no such transform.

Image sizes. Both trunks downsample by 32 (GoogLeNet's pools round up, ResNet's convolutions
pad), so for a side that is a multiple of 32 both end at side/32 and the fusion's feature maps
meet: 7x7 at 224 px, 2x2 at 64 px, 3x3 at 96 px. For other sides they can differ by one, and
`TwoStream` raises an error naming both sizes.
"""
from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import GoogLeNet, GoogLeNet_Weights, ResNet, ResNet18_Weights, googlenet, resnet18

from twostream.params import FLOW_PAIRS, ModelParams
from twostream.weights import load_pretrained

SPATIAL_FEATURES = 1024  # channels of GoogLeNet's inception5b output
TEMPORAL_FEATURES = 512  # channels of ResNet-18's layer4 output
FLOW_CHANNELS = 3 * FLOW_PAIRS  # each flow image is RGB (flow_to_image)
FUSION_DROPOUT = 0.2  # the seed's dropout before the fusion head's fc
MODEL_KINDS = ("spatial", "temporal", "twostream")


@dataclass(frozen=True)
class ModelSpec:
    """What `build_model` needs to build a network: small, serialisable, stored in every checkpoint.

    kind: spatial (GoogLeNet), temporal (ResNet-18 on flow stacks) or twostream (both, fused).
    pretrained: load ImageNet weights when building (True only for a fresh model; a model
    rebuilt from a checkpoint takes its weights from there).
    transform_input: GoogLeNet's input transform (spatial and twostream; see the module docstring).
    """
    kind: str
    num_classes: int
    pretrained: bool
    transform_input: bool

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {self.kind!r}; one of {', '.join(MODEL_KINDS)}")
        _check_pretrained(self.pretrained)

    @classmethod
    def fresh(cls, kind: str, num_classes: int, model: ModelParams) -> ModelSpec:
        """A new model as params.yaml `model` asks: ImageNet weights or random, and the matching input
        transform (True exactly when the GoogLeNet weights are ImageNet's)."""
        pretrained = model.pretrained == "imagenet"
        return cls(kind, num_classes, pretrained, transform_input=pretrained and kind != "temporal")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ModelSpec:
        return cls(**raw)


def build_model(spec: ModelSpec, streams: tuple[nn.Module, nn.Module] | None = None) -> nn.Module:
    """The network `spec` describes. For twostream, `streams` = (spatial, temporal) trained models to
    join; without them both streams are built from the spec (e.g. to load a checkpoint into)."""
    if spec.kind == "spatial":
        model = spatial_model(spec.num_classes, spec.pretrained)
        model.transform_input = spec.transform_input
        return model
    if spec.kind == "temporal":
        return temporal_model(spec.num_classes, spec.pretrained)
    if streams is None:
        part = dataclasses.replace(spec, kind="spatial")
        streams = (build_model(part), build_model(dataclasses.replace(part, kind="temporal")))
    spatial, temporal = streams
    if bool(spatial.transform_input) != spec.transform_input:
        raise ValueError(f"spec says transform_input={spec.transform_input}, the spatial stream has "
                         f"{spatial.transform_input}")
    return TwoStream(spatial, temporal, spec.num_classes)

# GoogLeNet's modules from the input to its last inception block, in forward order.
_GOOGLENET_TRUNK = (
    "conv1", "maxpool1", "conv2", "conv3", "maxpool2",
    "inception3a", "inception3b", "maxpool3",
    "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
    "inception5a", "inception5b",
)
# ResNet's modules from the input to layer4, in forward order.
_RESNET_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


def _check_pretrained(pretrained: Any) -> None:
    # params.yaml says `imagenet` or `none`; the string "none" is truthy, so insist on a bool.
    if not isinstance(pretrained, bool):
        raise TypeError(f"pretrained must be a bool, got {pretrained!r} "
                        f"(for model.pretrained in params.yaml pass `value == 'imagenet'`)")


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of `model` (trainable or not; shared ones counted once)."""
    return sum(p.numel() for p in model.parameters())


def spatial_model(num_classes: int, pretrained: bool) -> GoogLeNet:
    """GoogLeNet without auxiliary heads, fc 1024 -> `num_classes`.

    pretrained=True loads the ImageNet weights (`GoogLeNet_Weights.IMAGENET1K_V1`) into every
    layer but fc (the checkpoint's auxiliary-head weights are dropped, everything else must
    match exactly) and sets `transform_input=True`, since the ported weights expect inputs
    scaled to [-1, 1] and our inputs are ImageNet-normalised. pretrained=False initialises at
    random (torchvision's GoogLeNet init) with `transform_input=False`. The flag is kept on the
    model as `model.transform_input`. 5,612,204 parameters for 12 classes.
    """
    _check_pretrained(pretrained)
    if not pretrained:
        return googlenet(weights=None, num_classes=num_classes, aux_logits=False,
                         transform_input=False, init_weights=True)
    state = load_pretrained(GoogLeNet_Weights.IMAGENET1K_V1)
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
    model = googlenet(weights=None, num_classes=1000, aux_logits=False,
                      transform_input=True, init_weights=False)
    model.load_state_dict(state, strict=True)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def inflate_conv1(rgb_weight: Tensor, in_channels: int) -> Tensor:
    """Filters for `in_channels` inputs from RGB filters: the mean over RGB, replicated.

    rgb_weight has shape (out, 3, kh, kw); the result (out, in_channels, kh, kw), every input
    channel equal to rgb_weight.mean(dim=1). The input is not modified.
    """
    if rgb_weight.dim() != 4:
        raise ValueError(f"expected conv weights (out, in, kh, kw), got shape {tuple(rgb_weight.shape)}")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    mean = rgb_weight.detach().mean(dim=1, keepdim=True)
    return mean.repeat(1, in_channels, 1, 1).clone()


def temporal_model(num_classes: int, pretrained: bool, in_channels: int = FLOW_CHANNELS) -> ResNet:
    """ResNet-18 on a stack of `in_channels` flow channels, fc 512 -> `num_classes`.

    conv1 is Conv2d(in_channels, 64, 7, stride 2, padding 3, no bias). pretrained=True loads
    the ImageNet weights (`ResNet18_Weights.IMAGENET1K_V1`) into every layer and initialises
    conv1 with `inflate_conv1` of the pretrained RGB filters; fc is new. pretrained=False
    initialises at random, conv1 the way torchvision's ResNet initialises its convolutions
    (Kaiming normal, fan_out). 11,248,524 parameters for 12 classes and 24 channels.
    """
    _check_pretrained(pretrained)
    conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if not pretrained:
        model = resnet18(weights=None, num_classes=num_classes)
        nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
        model.conv1 = conv1
        return model
    state = load_pretrained(ResNet18_Weights.IMAGENET1K_V1)
    model = resnet18(weights=None, num_classes=1000)
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        conv1.weight.copy_(inflate_conv1(state["conv1.weight"], in_channels))
    model.conv1 = conv1
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


class TwoStream(nn.Module):
    """Two-stream fusion of a spatial GoogLeNet and a temporal ResNet-18.

    The GoogLeNet trunk (input transform as in the wrapped model, then up to inception5b,
    1024 x h x w) and the ResNet-18 trunk (up to layer4, 512 x h x w) are concatenated
    (1536 channels) and fused: 1x1 conv to 1024 (no bias), BatchNorm, ReLU, global average
    pooling, dropout, fc 1024 -> num_classes. The spatial stream also goes on through its
    own avgpool, dropout and fc. The prediction is the mean of the two heads' scores.

    The modules of `spatial` and `temporal` are used, not copied (their weights are shared
    with the models passed in). The temporal model's fc and pooling are not part of this
    model. 18,441,784 parameters for 12 classes.
    """

    def __init__(self, spatial: nn.Module, temporal: nn.Module, num_classes: int,
                 dropout: float = FUSION_DROPOUT) -> None:
        super().__init__()
        if not isinstance(spatial, GoogLeNet):
            raise TypeError(f"spatial must be a torchvision GoogLeNet, got {type(spatial).__name__}")
        if spatial.aux1 is not None or spatial.aux2 is not None:
            raise ValueError("spatial GoogLeNet must be built without auxiliary heads (aux_logits=False)")
        if not isinstance(temporal, ResNet):
            raise TypeError(f"temporal must be a torchvision ResNet, got {type(temporal).__name__}")
        if temporal.fc.in_features != TEMPORAL_FEATURES:
            raise ValueError(f"temporal ResNet must end in {TEMPORAL_FEATURES} channels "
                             f"(ResNet-18), got {temporal.fc.in_features}")
        self.spatial = spatial
        # Same module names as in the ResNet, so its state dict keys carry over.
        self.temporal = nn.Sequential(OrderedDict((n, getattr(temporal, n)) for n in _RESNET_TRUNK))
        self.fusion = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(SPATIAL_FEATURES + TEMPORAL_FEATURES, SPATIAL_FEATURES,
                               kernel_size=1, bias=False)),
            ("bn", nn.BatchNorm2d(SPATIAL_FEATURES)),
            ("relu", nn.ReLU(inplace=True)),
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten(1)),
            ("dropout", nn.Dropout(dropout)),
            ("fc", nn.Linear(SPATIAL_FEATURES, num_classes)),
        ]))

    def spatial_features(self, frames: Tensor) -> Tensor:
        """GoogLeNet's inception5b output (B, 1024, h, w), after the model's own input transform."""
        x = self.spatial._transform_input(frames)
        for name in _GOOGLENET_TRUNK:
            x = getattr(self.spatial, name)(x)
        return x

    def temporal_features(self, flow_stack: Tensor) -> Tensor:
        """ResNet-18's layer4 output (B, 512, h, w)."""
        return self.temporal(flow_stack)

    def forward_heads(self, frames: Tensor, flow_stack: Tensor) -> tuple[Tensor, Tensor]:
        """(fusion_logits, spatial_logits), each (B, num_classes)."""
        if frames.shape[0] != flow_stack.shape[0]:
            raise ValueError(f"batch sizes differ: frames {frames.shape[0]}, flow {flow_stack.shape[0]}")
        fs = self.spatial_features(frames)
        ft = self.temporal_features(flow_stack)
        if fs.shape[-2:] != ft.shape[-2:]:
            raise ValueError(
                f"feature maps do not meet: spatial trunk gives {fs.shape[-2]}x{fs.shape[-1]} "
                f"(frames {frames.shape[-2]}x{frames.shape[-1]}), temporal trunk gives "
                f"{ft.shape[-2]}x{ft.shape[-1]} (flow {flow_stack.shape[-2]}x{flow_stack.shape[-1]}); "
                f"use the same image size for both, a multiple of 32")
        fusion_logits = self.fusion(torch.cat([fs, ft], dim=1))
        s = torch.flatten(self.spatial.avgpool(fs), 1)
        spatial_logits = self.spatial.fc(self.spatial.dropout(s))
        return fusion_logits, spatial_logits

    def forward(self, frames: Tensor, flow_stack: Tensor) -> Tensor:
        """Mean of the fusion head's and the spatial head's scores, (B, num_classes)."""
        fusion_logits, spatial_logits = self.forward_heads(frames, flow_stack)
        return (fusion_logits + spatial_logits) / 2
