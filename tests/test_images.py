import cv2
import numpy as np
import pytest

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
