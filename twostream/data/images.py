"""Zero-pad to a centred square, then resize: one function for still images and video frames.

Padding instead of cropping keeps the whole scene and the aspect ratio (an actor at
the edge of a wide frame is not cut away); the model sees black borders instead.

`read_rgb` refuses damaged files instead of returning a partly grey image: JPEGs are
decoded by libjpeg-turbo through simplejpeg in strict mode, where every libjpeg warning
("Premature end of JPEG file", "Corrupt JPEG data: ...") is an error; other formats go
through Pillow, which raises on truncated data. Pillow opens only the formats in
`PILLOW_FORMATS` (never EPS/PS, which would run Ghostscript), whatever the file's name.

Memory is bounded: an image of more than `MAX_PIXELS` pixels is refused before it is decoded
(a decompression bomb), and `pad_resize` never allocates a padded square larger than
`MAX_PADDED_BYTES`: a very long, thin image (60000x1) is resized along each axis by the same
area average the padded square would get (`_area_resize`), so the result is the same within
rounding.
"""
from __future__ import annotations

import io
import re
import warnings
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
# Pillow's own decompression-bomb limit (about 89.5 million pixels, 1/4 GiB as RGB); any decoder
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
# Above this the padded square is not allocated; the image is resized along each axis instead
MAX_PADDED_BYTES = 64 * 2**20
_AREA_CHUNK_BYTES = 32 * 2**20  # the working set of one slice of `_area_resize`
# The formats Pillow may open (identified by content, not by name); JPEGs go to libjpeg-turbo first
PILLOW_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP")


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

    Downscaling uses area interpolation (anti-aliased), upscaling bilinear. A padded square of
    more than MAX_PADDED_BYTES (a long, thin image) is never built: the image is area-resized
    along each axis as part of that square (`_area_resize`), which gives the same pixels within
    rounding.
    """
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    side = max(image.shape[:2])
    if side > size and side * side * image.shape[2] * image.itemsize > MAX_PADDED_BYTES:
        return _area_resize(image, size)
    square = pad_to_square(image)
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


def _area_resize(image: np.ndarray, size: int) -> np.ndarray:
    """`pad_resize` by area averaging without the padded square: the long axis first (in slices of the short
    one), then the short axis as part of the zero-padded square. Memory follows the image, not the square."""
    height, width = image.shape[:2]
    side = max(height, width)
    long_axis = 0 if height >= width else 1
    short = image.shape[1 - long_axis]
    step = max(1, _AREA_CHUNK_BYTES // (side * image.shape[2] * 8))  # slices of the short axis, float64
    parts = [_area_axis(image[start:start + step] if long_axis else image[:, start:start + step], long_axis,
                        0, side, size) for start in range(0, short, step)]
    reduced = np.concatenate(parts, axis=1 - long_axis)  # (size, short, C) or (short, size, C)
    out = _area_axis(reduced, 1 - long_axis, (side - short) // 2, side, size)
    return np.clip(np.rint(out), 0, np.iinfo(image.dtype).max).astype(image.dtype)


def _area_axis(array: np.ndarray, axis: int, offset: int, side: int, size: int) -> np.ndarray:
    """Resize `array` along `axis` as if it sat at `offset` in `side` zeros, to `size`, by area averages.

    Output k averages the padded signal over [k, k + 1) * side / size: the difference of its integral
    C(x) = sum(array[:floor(x)]) + frac(x) * array[floor(x)] at the two ends (zero outside the array)."""
    array = np.moveaxis(array, axis, 0)
    length = array.shape[0]
    cumulative = np.zeros((length + 1, *array.shape[1:]), np.float64)
    np.cumsum(array, axis=0, dtype=np.float64, out=cumulative[1:])
    ends = np.clip(np.arange(size + 1) * (side / size) - offset, 0, length)
    whole = np.minimum(np.floor(ends).astype(np.int64), length - 1)
    fraction = (ends - whole).reshape(-1, *([1] * (array.ndim - 1)))
    integral = cumulative[whole] + fraction * array[whole]
    return np.moveaxis((integral[1:] - integral[:-1]) * (size / side), 0, axis)


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


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageError(f"{path}: image of {width}x{height} pixels is larger than the {MAX_PIXELS:,} pixels "
                         f"read_rgb decodes (a decompression bomb?); {FIX}")


def _decode_jpeg(path: Path, data: bytes) -> np.ndarray:
    try:
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
        _check_pixels(path, width, height)
        return simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True)
    except ValueError as exc:  # simplejpeg raises ValueError for libjpeg errors and (strict) warnings
        if isinstance(exc, ImageError):
            raise
        detail = re.sub(r"^tj\w*\(\): ", "", str(exc)).strip() or type(exc).__name__  # without TurboJPEG's prefix
        raise ImageError(f"{path}: truncated or corrupt image (libjpeg: {detail}); {FIX}") from None


def _open(data: bytes) -> Image.Image:
    """Pillow's image of `data` (header only), for the allowed formats; a decompression bomb raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)


def _decode_with_pillow(path: Path, data: bytes) -> np.ndarray:
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # set by some other code: Pillow would fill truncated images with grey
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; read_rgb could not detect truncated images")
    try:
        with _open(data) as image:
            _check_pixels(path, *image.size)
            image.load()
            return _to_rgb(image)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: cannot decode image (not an image, or not one of the formats read: "
                         f"{', '.join(PILLOW_FORMATS)}); {FIX}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: image larger than the {MAX_PIXELS:,} pixels read_rgb decodes "
                         f"(a decompression bomb? Pillow: {exc}); {FIX}") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated data, bad checksums, broken streams
        raise ImageError(f"{path}: truncated or corrupt image (Pillow: {exc}); {FIX}") from None


def _to_rgb(image: Image.Image) -> np.ndarray:
    """RGB uint8. 16-bit grey (and 32-bit integer) images are scaled to 8 bits, not clipped at 255 (which
    would turn nearly all of a 16-bit picture white); an alpha channel is dropped, as OpenCV's imread does."""
    if image.mode.startswith("I"):  # I;16, I;16B, I: 16-bit samples (PNG, TIFF)
        grey = np.clip(np.asarray(image, dtype=np.float64), 0, 65535) / 257
        return np.repeat(np.rint(grey).astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8; 1 when absent or unreadable). Reads the header only."""
    try:
        with _open(data) as image:
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
