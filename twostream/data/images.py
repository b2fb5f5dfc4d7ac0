"""Zero-pad to a centred square, then resize: one function for still images and video frames.

Padding instead of cropping keeps the whole scene and the aspect ratio (an actor at
the edge of a wide frame is not cut away); the model sees black borders instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm


class ImageError(ValueError):
    """An image file that is missing or cannot be decoded."""


def pad_to_square(image: np.ndarray) -> np.ndarray:
    """Centre `image` (H, W, C) on a zero square of side max(H, W); odd remainders go bottom/right."""
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    height, width = image.shape[:2]
    side = max(height, width)
    top, left = (side - height) // 2, (side - width) // 2
    square = np.zeros((side, side, image.shape[2]), dtype=image.dtype)
    square[top:top + height, left:left + width] = image
    return square


def pad_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Pad to a centred square with zeros, then resize to (size, size).

    Downscaling uses area interpolation (anti-aliased), upscaling bilinear.
    """
    square = pad_to_square(image)
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file to RGB uint8; a missing or corrupt file names the file."""
    if not path.is_file():
        raise ImageError(f"{path}: image not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"{path}: cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def pad_resize_files(paths: Sequence[Path], size: int, out: np.ndarray, desc: str = "pad+resize") -> None:
    """Fill `out` (N, size, size, 3) with the padded, resized images at `paths`, in order."""
    if out.shape != (len(paths), size, size, 3):
        raise ValueError(f"output array has shape {out.shape}, expected {(len(paths), size, size, 3)}")
    cache: dict[Path, np.ndarray] = {}  # oversampled splits repeat files
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img")):
        if path not in cache:
            cache[path] = pad_resize(read_rgb(path), size)
        out[i] = cache[path]
