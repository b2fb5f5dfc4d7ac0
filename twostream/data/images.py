"""Zero-pad to a centred square, then resize: one function for still images and video frames.

Padding instead of cropping keeps the whole scene and the aspect ratio (an actor at
the edge of a wide frame is not cut away); the model sees black borders instead.

`read_rgb` refuses damaged files instead of returning a partly grey image: JPEGs are
decoded by libjpeg-turbo through simplejpeg in strict mode, where every libjpeg warning
("Premature end of JPEG file", "Corrupt JPEG data: ...") is an error; other formats go
through Pillow, which raises on truncated data.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm import tqdm

from twostream.errors import ImageError

FIX = "replace the file, or leave it out for good: add its path under data/raw to exclude.txt"
_JPEG_SOI = b"\xff\xd8"
_EXIF_ORIENTATION = 0x0112


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
    """Decode an image file to RGB uint8 (H, W, 3), turned upright by its EXIF orientation.

    A missing, truncated or corrupt file raises ImageError naming the file and the problem.
    JPEG: libjpeg-turbo (simplejpeg, strict), the same decoder and settings as OpenCV and
    Pillow (accurate DCT, smooth chroma upsampling), so the pixels are the ones they give;
    every libjpeg warning is an error, which catches a file cut short (also one that only
    lacks its end-of-image marker) and most damage inside the compressed data. Bytes after
    the end-of-image marker are ignored, as every JPEG decoder does. Other formats: Pillow.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: image not found; check the dataset download or the split lists") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image ({exc.strerror or exc}); {FIX}") from None
    if data.startswith(_JPEG_SOI):
        image = _decode_jpeg(path, data)
    else:
        image = _decode_with_pillow(path, data)
    return _upright(image, _exif_orientation(data))


def _decode_jpeg(path: Path, data: bytes) -> np.ndarray:
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:  # simplejpeg raises ValueError for libjpeg errors and (strict) warnings
        detail = re.sub(r"^tj\w*\(\): ", "", str(exc)).strip() or type(exc).__name__  # without TurboJPEG's prefix
        raise ImageError(f"{path}: truncated or corrupt image (libjpeg: {detail}); {FIX}") from None


def _decode_with_pillow(path: Path, data: bytes) -> np.ndarray:
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # set by some other code: Pillow would fill truncated images with grey
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; read_rgb could not detect truncated images")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        raise ImageError(f"{path}: cannot decode image (not an image or an unsupported format); {FIX}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated data, bad checksums, broken streams
        raise ImageError(f"{path}: truncated or corrupt image (Pillow: {exc}); {FIX}") from None


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8; 1 when absent or unreadable). Reads the header only."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - metadata only: the pixels decoded, a bad EXIF block is no damage
        return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation as Pillow's ImageOps.exif_transpose and OpenCV's imread do."""
    transposed = {
        1: image,
        2: image[:, ::-1],                               # mirrored
        3: image[::-1, ::-1],                            # rotated 180
        4: image[::-1],                                  # flipped
        5: image.transpose(1, 0, 2),                     # transposed
        6: np.rot90(image, -1),                          # rotated 90 clockwise
        7: image[::-1, ::-1].transpose(1, 0, 2),         # transversed
        8: np.rot90(image, 1),                           # rotated 90 counter-clockwise
    }[orientation]
    return np.ascontiguousarray(transposed)


def pad_resize_files(paths: Sequence[Path], size: int, out: np.ndarray, desc: str = "pad+resize") -> None:
    """Fill `out` (N, size, size, 3) with the padded, resized images at `paths`, in order."""
    if out.shape != (len(paths), size, size, 3):
        raise ValueError(f"output array has shape {out.shape}, expected {(len(paths), size, size, 3)}")
    cache: dict[Path, np.ndarray] = {}  # oversampled splits repeat files
    for i, path in enumerate(tqdm(paths, desc=desc, unit="img")):
        if path not in cache:
            cache[path] = pad_resize(read_rgb(path), size)
        out[i] = cache[path]
