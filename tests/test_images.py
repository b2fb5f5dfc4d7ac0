import tracemalloc
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from helpers import FIX, photo, sof_with_size
from twostream import errors
from twostream.data import images
from twostream.data.images import ImageError, pad_resize, pad_resize_files, pad_to_square, read_rgb


def test_pad_to_square_centres_and_zero_fills():
    image = np.full((2, 6, 3), 200, np.uint8)
    square = pad_to_square(image)
    assert square.shape == (6, 6, 3)
    assert (square[2:4] == 200).all()
    assert (square[:2] == 0).all() and (square[4:] == 0).all()


def test_pad_resize_keeps_aspect_and_position():
    # 100 wide x 50 high; left half red, right half blue
    image = np.zeros((50, 100, 3), np.uint8)
    image[:, :50] = (255, 0, 0)
    image[:, 50:] = (0, 0, 255)
    out = pad_resize(image, 20)
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    # padding of 25 rows top and bottom -> 5 rows each at size 20, zero
    assert (out[:5] == 0).all() and (out[15:] == 0).all()
    assert (out[6:14, :9] == (255, 0, 0)).all()
    assert (out[6:14, 11:] == (0, 0, 255)).all()


def test_pad_resize_tall_image_pads_left_and_right():
    image = np.full((60, 20, 3), 90, np.uint8)
    out = pad_resize(image, 30)
    assert (out[:, :10] == 0).all() and (out[:, 20:] == 0).all()
    assert (out[:, 11:19] == 90).all()


def test_upscale_works():
    out = pad_resize(np.full((8, 16, 3), 7, np.uint8), 64)
    assert out.shape == (64, 64, 3) and out[32, 32, 0] == 7


def test_read_rgb_errors_and_channel_order(tmp_path):
    with pytest.raises(ImageError, match="image not found"):
        read_rgb(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(ImageError, match=r"bad.jpg: cannot decode image"):
        read_rgb(bad)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 2] = 255  # BGR red
    cv2.imwrite(str(tmp_path / "red.png"), red)
    assert tuple(read_rgb(tmp_path / "red.png")[0, 0]) == (255, 0, 0)


def test_pad_resize_files_fills_in_order(tmp_path):
    paths = []
    for i, value in enumerate((10, 200)):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((10, 20, 3), value, np.uint8))
        paths.append(path)
    out = np.zeros((3, 8, 8, 3), np.uint8)
    pad_resize_files([paths[0], paths[1], paths[0]], 8, out)
    assert out[0, 4, 4, 0] == 10 and out[1, 4, 4, 0] == 200 and out[2, 4, 4, 0] == 10
    with pytest.raises(ValueError, match="expected"):
        pad_resize_files(paths, 8, np.zeros((3, 8, 8, 3), np.uint8))


def write_jpeg(path, image=None, **pillow_options):
    Image.fromarray(photo() if image is None else image).save(path, "JPEG", quality=90, **pillow_options)
    return path


def opencv_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def garbage_in_scan(data, count, seed, no_ff=False):
    """`count` random bytes over the middle of the entropy-coded data (after the last SOS header)."""
    data = bytearray(data)
    start, end = data.rfind(b"\xff\xda") + 20, len(data) - 2
    middle = (start + end - count) // 2
    assert start < middle and middle + count < end
    garbage = np.random.default_rng(seed).integers(0, 255 if no_ff else 256, count, dtype=np.uint8)
    data[middle:middle + count] = garbage.tobytes()
    return bytes(data)


@pytest.mark.parametrize("options", [{}, {"progressive": True}, {"subsampling": 0}, {"optimize": True}])
def test_read_rgb_jpeg_matches_opencv(tmp_path, options):
    path = write_jpeg(tmp_path / "ok.jpg", **options)
    image = read_rgb(path)
    reference = opencv_rgb(path)
    assert image.shape == reference.shape == (300, 400, 3) and image.dtype == np.uint8
    # libjpeg-turbo with the same settings in both: identical here; a level or two would be acceptable
    assert np.abs(image.astype(int) - reference).mean() < 1.0


def test_read_rgb_jpeg_grayscale_and_exif_orientation(tmp_path):
    grey = photo()[..., 0]
    path = tmp_path / "grey.jpg"
    Image.fromarray(grey).save(path, "JPEG")
    image = read_rgb(path)
    assert image.shape == (300, 400, 3) and (image[..., 0] == image[..., 1]).all()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: display turned 90 degrees clockwise
    path = write_jpeg(tmp_path / "turned.jpg", exif=exif)
    image = read_rgb(path)
    assert image.shape == (400, 300, 3)  # upright, as OpenCV's imread shows it
    assert np.abs(image.astype(int) - opencv_rgb(path)).mean() < 1.0


def test_read_rgb_truncated_jpeg(tmp_path):
    data = write_jpeg(tmp_path / "ok.jpg").read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[:len(data) // 2])
    assert opencv_rgb(path).shape == (300, 400, 3)  # OpenCV returns a grey-bottomed image, no error
    with pytest.raises(ImageError) as info:
        read_rgb(path)
    assert str(info.value) == (f"{path}: truncated or corrupt image (libjpeg: Premature end of JPEG file); {FIX}")


def test_read_rgb_jpeg_without_end_marker(tmp_path):
    data = write_jpeg(tmp_path / "ok.jpg").read_bytes()
    assert data.endswith(b"\xff\xd9")
    path = tmp_path / "no_eoi.jpg"
    path.write_bytes(data[:-2])
    with pytest.raises(ImageError, match=r"no_eoi.jpg: truncated or corrupt image \(libjpeg: Premature end of JPEG"):
        read_rgb(path)


@pytest.mark.parametrize("count, no_ff, detail",
                         [(4096, True, "Corrupt JPEG data"), (4096, False, ""), (256, False, "")])
def test_read_rgb_garbage_in_the_compressed_data(tmp_path, count, no_ff, detail):
    # Pillow decodes these without a word; libjpeg's warnings ("Corrupt JPEG data: ...") are errors here,
    # and a random marker in the data is a libjpeg error ("Unsupported marker type 0x40"). A few bytes
    # without 0xFF can decode to wrong pixels with no warning at all: baseline JPEG has no checksum
    data = write_jpeg(tmp_path / "ok.jpg").read_bytes()
    path = tmp_path / "garbage.jpg"
    path.write_bytes(garbage_in_scan(data, count, seed=3, no_ff=no_ff))
    with pytest.raises(ImageError) as info:
        read_rgb(path)
    message = str(info.value)
    assert message.startswith(f"{path}: truncated or corrupt image (libjpeg: {detail}")
    assert message.endswith(FIX) and "\n" not in message


def test_read_rgb_ignores_bytes_after_the_end_marker(tmp_path):
    data = write_jpeg(tmp_path / "ok.jpg").read_bytes()
    expected = read_rgb(tmp_path / "ok.jpg")
    for name, tail in (("zeros.jpg", b"\0" * 512), ("trailer.jpg", b"some camera trailer")):
        (tmp_path / name).write_bytes(data + tail)
        assert (read_rgb(tmp_path / name) == expected).all()


def test_read_rgb_truncated_png(tmp_path):
    path = tmp_path / "ok.png"
    cv2.imwrite(str(path), photo()[..., ::-1])
    assert (read_rgb(path) == photo()).all()  # lossless
    data = path.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ImageError, match=r"cut.png: truncated or corrupt image \(Pillow: .*truncated"):
        read_rgb(cut)


def test_read_rgb_refuses_to_run_with_pillow_loading_truncated_images(tmp_path, monkeypatch):
    path = tmp_path / "ok.png"
    cv2.imwrite(str(path), photo())
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        read_rgb(path)


def test_image_error_is_the_projects():
    assert ImageError is errors.ImageError and issubclass(ImageError, errors.TwostreamError)


# --------------------------------------------------------------------------- bounded memory

def padded_then_resized(image, size):
    """The definition of pad_resize: the whole zero-padded square, resized by OpenCV."""
    square = pad_to_square(image)
    interpolation = cv2.INTER_AREA if square.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)


@pytest.mark.parametrize("height, width, size", [(300, 400, 224), (333, 500, 224), (500, 333, 112), (241, 321, 112),
                                                 (448, 100, 224), (37, 1000, 224), (1, 50, 8), (50, 1, 8)])
def test_area_resize_without_the_square_matches_pad_then_resize(height, width, size):
    image = photo(height, width) if min(height, width) > 10 else \
        np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    reference = padded_then_resized(image, size)
    result = images._area_resize(image, size)
    assert result.shape == reference.shape and result.dtype == np.uint8
    assert np.abs(result.astype(int) - reference).max() <= 1  # the same area averages, rounded once


def test_pad_resize_of_a_60000x1_image_never_builds_the_square():
    # the padded square would be 60000 x 60000 x 3 bytes (10 GiB); the result is that square's resize
    image = np.full((60000, 1, 3), 255, np.uint8)
    image[30000:, 0, 1] = 0
    tracemalloc.start()
    try:
        out = pad_resize(image, 224)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert out.shape == (224, 224, 3)
    # the column sits at x = 29999 of the square, inside output column 111 (x 29732.1 to 30000): averaged with
    # 266.86 zero columns, 255 / 267.86 rounds to 1
    assert (out[:, 111, 0] == 1).all() and (out[:112, 111, 1] == 1).all() and (out[112:, 111, 1] == 0).all()
    assert (np.delete(out, 111, axis=1) == 0).all()
    # the same bytes as the padded square gives, shown on one 6000-long image (a 103 MiB square)
    small = np.random.default_rng(2).integers(0, 256, (6000, 3, 3), dtype=np.uint8)
    assert np.abs(pad_resize(small, 64).astype(int) - padded_then_resized(small, 64)).max() <= 1


def png_header_only(width, height):
    """A PNG whose header claims `width` x `height` (8-bit RGB) with a few bytes of image data."""
    def chunk(kind, body):
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_read_rgb_refuses_decompression_bombs_before_decoding(tmp_path):
    jpeg = tmp_path / "bomb.jpg"  # 65000 x 65000 claimed: 12 GiB as RGB
    jpeg.write_bytes(sof_with_size(write_jpeg(tmp_path / "ok.jpg").read_bytes(), 65000, 65000))
    with pytest.raises(ImageError) as info:
        read_rgb(jpeg)
    assert str(info.value) == (f"{jpeg}: image of 65000x65000 pixels is larger than the {images.MAX_PIXELS:,} pixels "
                               f"read_rgb decodes (a decompression bomb?); {FIX}")
    for width, height in ((10000, 10000), (20000, 20000)):  # Pillow warns above its limit, refuses above twice it
        png = tmp_path / f"bomb{width}.jpg"  # a PNG under a .jpg name
        png.write_bytes(png_header_only(width, height))
        with pytest.raises(ImageError, match=rf"bomb{width}.jpg: image (of {width}x{height} pixels is )?larger than "
                                             r"the 89,478,485 pixels read_rgb decodes \(a decompression bomb\?"):
            read_rgb(png)


# --------------------------------------------------------------------------- valid but unusual images

def test_read_rgb_cmyk_jpeg_is_close_to_pillows_colours(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo()).convert("CMYK").save(path, "JPEG", quality=95)
    assert Image.open(path).mode == "CMYK"
    reference = np.asarray(Image.open(path).convert("RGB")).astype(int)
    image = read_rgb(path)
    assert image.shape == (300, 400, 3)
    assert np.abs(image - reference).mean() < 2 and np.abs(image - reference).max() <= 8
    assert np.abs(image.astype(int) - photo()).mean() < 4  # and close to the picture it was made from


def test_read_rgb_grayscale_progressive_jpeg_with_exif(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8  # rotated 90 degrees counter-clockwise
    path = tmp_path / "grey.jpg"
    Image.fromarray(photo()[..., 1]).save(path, "JPEG", quality=90, progressive=True, exif=exif)
    image = read_rgb(path)
    assert image.shape == (400, 300, 3) and (image[..., 0] == image[..., 2]).all()
    assert np.abs(image.astype(int) - opencv_rgb(path)).mean() < 1.0


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P", "L", "LA"])
def test_read_rgb_png_under_a_jpg_name(tmp_path, mode):
    picture = Image.fromarray(photo(60, 80))
    image = picture.convert(mode) if mode != "P" else picture.quantize(64)
    path = tmp_path / "really_a.png.jpg"
    image.save(path, "PNG")
    assert path.read_bytes().startswith(b"\x89PNG")
    expected = np.asarray(image.convert("RGB"))  # the alpha channel dropped, the palette applied
    assert (read_rgb(path) == expected).all()


def test_read_rgb_16_bit_png_is_not_washed_out(tmp_path):
    grey8 = photo(60, 80)[..., 0]
    path = tmp_path / "grey16.jpg"
    cv2.imwrite(str(path.with_suffix(".png")), grey8.astype(np.uint16) * 257)  # full 16-bit range
    path.write_bytes(path.with_suffix(".png").read_bytes())
    assert Image.open(path).mode.startswith("I;16")
    assert (np.asarray(Image.open(path).convert("RGB")) == 255).mean() > 0.9  # Pillow's convert: nearly all white
    image = read_rgb(path)
    assert (image == grey8[..., None]).all()
    rgb16 = tmp_path / "rgb16.png"
    cv2.imwrite(str(rgb16), photo(60, 80)[..., ::-1].astype(np.uint16) * 257)
    assert (read_rgb(rgb16) == photo(60, 80)).all()


def test_read_rgb_opens_only_the_allowed_formats(tmp_path):
    eps = tmp_path / "drawing.jpg"  # EPS: Pillow would hand it to Ghostscript
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nnewpath 0 0 moveto 8 8 lineto stroke\n"
                    b"showpage\n%%EOF\n")
    with Image.open(eps) as unrestricted:
        assert unrestricted.format == "EPS"  # what an unrestricted Image.open takes it for
    with pytest.raises(ImageError) as info:
        read_rgb(eps)
    assert str(info.value) == (f"{eps}: cannot decode image (not an image, or not one of the formats read: "
                               f"JPEG, PNG, BMP, TIFF, WEBP); {FIX}")
    for fmt in ("BMP", "TIFF", "WEBP"):
        path = tmp_path / f"ok.{fmt.lower()}"
        Image.fromarray(photo(30, 40)).save(path, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
        assert (read_rgb(path) == photo(30, 40)).all()
