"""Per-sample transforms: the seed's spatial augmentation, the flow stacks' translation, and ImageNet
normalisation.

Samples arrive as uint8 CHW tensors (cheap copies out of memmapped arrays); the
augmentations run on uint8, then one conversion to float and normalisation.
Augmentation is for training only: validation and test see the plain image.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from twostream.params import AugmentParams

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize() -> v2.Transform:
    """uint8 CHW -> float, ImageNet mean/std (also used per flow image)."""
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def spatial_augmentation(p: AugmentParams) -> v2.Transform:
    """The seed's list: colour, grey, autocontrast, sharpness, flip, perspective, rotation."""
    brightness, contrast, saturation, hue = p.color_jitter
    return v2.Compose([
        v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue),
        v2.RandomGrayscale(p=p.grayscale_p),
        v2.RandomAutocontrast(p=p.autocontrast_p),
        v2.RandomAdjustSharpness(sharpness_factor=p.sharpness_factor, p=p.sharpness_p),
        v2.RandomHorizontalFlip(p=p.hflip_p),
        v2.RandomPerspective(distortion_scale=p.perspective_distortion, p=p.perspective_p),
        v2.RandomRotation(degrees=p.rotation_degrees),
    ])


def frame_transform(augment: AugmentParams | None) -> v2.Transform:
    """Training transform when `augment` is given, else the evaluation transform."""
    if augment is None:
        return normalize()
    return v2.Compose([spatial_augmentation(augment), normalize()])


FLOW_SHIFT_FRACTION = 8  # a flow stack moves by up to 1/8 of its side


def flow_augmentation(size: int) -> v2.Transform:
    """A random translation of a whole (8, 3, S, S) flow stack by up to S/8 px in each direction (one
    shift for all 8 images, edges repeated). It moves where the motion is and keeps every flow vector as
    it is; flips and rotations would not (they change what each colour means)."""
    pad = max(1, size // FLOW_SHIFT_FRACTION)
    return v2.RandomCrop(size, padding=pad, padding_mode="edge")


def flow_stack(images: torch.Tensor) -> torch.Tensor:
    """(8, 3, S, S) uint8 flow images -> (24, S, S) float, each image ImageNet-normalised."""
    count, channels, height, width = images.shape
    return normalize()(images).reshape(count * channels, height, width)
