"""Optical flow: direction and magnitude of known shifts, shapes, per-video colour scale, errors."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torchvision.utils import flow_to_image

from twostream import flow as flow_mod
from twostream.device import resolve_device
from twostream.errors import DeviceUnavailable
from twostream.flow import DIS_PRESET, FlowEstimator, flow_images
from twostream.io import open_array
from twostream.params import FLOW_FRAMES, FLOW_PAIRS, RAFT_MIN_SIZE, FlowParams

MARGIN = 16  # border excluded when measuring flow (content enters/leaves there)


def params(method: str = "dis") -> FlowParams:
    """flow.* of params.yaml; the device and RAFT batch size are runtime settings, passed apart."""
    return FlowParams(method=method, pretrained=False, raft_updates=2)


def texture(side: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture (blurred noise), uint8 (side, side, 3)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(side, side, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).round().astype(np.uint8)


def shifted(big: np.ndarray, size: int, dx: int, dy: int) -> np.ndarray:
    """The central size x size window of `big` with its content moved by (dx, dy) pixels."""
    y0 = x0 = (big.shape[0] - size) // 2
    return np.ascontiguousarray(big[y0 - dy:y0 - dy + size, x0 - dx:x0 - dx + size])


def video(big: np.ndarray, size: int, steps: list[int], vertical: bool = False) -> np.ndarray:
    """9 frames whose content moves by steps[k] pixels (right, or down) from frame k to k+1."""
    positions = np.concatenate([[0], np.cumsum(steps)]).astype(int)
    return np.stack([shifted(big, size, 0, p) if vertical else shifted(big, size, p, 0)
                     for p in positions])


def interior(array: np.ndarray) -> np.ndarray:
    """Drop MARGIN pixels on each side of the last two spatial axes (..., H, W)."""
    return array[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


def saturation(images: np.ndarray) -> np.ndarray:
    """Per-pixel max - min over RGB of (..., H, W, 3) images: 0 white/grey, 255 full colour."""
    images = images.astype(int)
    return images.max(-1) - images.min(-1)


# --- known shifts -------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["dis", "farneback"])
@pytest.mark.parametrize("dx, dy", [(3, 0), (0, 3), (-2, 0), (0, -2)])
def test_opencv_recovers_known_shift(method, dx, dy):
    size = 96
    big = texture(160)
    pair = np.stack([shifted(big, size, 0, 0), shifted(big, size, dx, dy)])[None]
    with FlowEstimator(params(method)) as estimate:
        flow = estimate(pair)
    assert flow.shape == (1, 2, size, size) and flow.dtype == np.float32
    mean_dx, mean_dy = interior(flow[0]).mean(axis=(1, 2))
    along, across = (mean_dx, mean_dy) if dx else (mean_dy, mean_dx)
    expected = dx or dy
    assert np.sign(along) == np.sign(expected)
    assert abs(along - expected) <= 0.3 * abs(expected), (mean_dx, mean_dy)
    assert abs(across) < 0.5, (mean_dx, mean_dy)


def test_flow_estimator_checks_pairs():
    assert (FLOW_FRAMES, FLOW_PAIRS) == (9, 8) and DIS_PRESET == cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
    with FlowEstimator(params("dis")) as estimate:
        with pytest.raises(ValueError, match=r"\(P, 2, S, S, 3\) uint8"):
            estimate(np.zeros((1, 3, 32, 32, 3), np.uint8))
        assert estimate(np.zeros((0, 2, 32, 32, 3), np.uint8)).shape == (0, 2, 32, 32)


# --- flow images --------------------------------------------------------------------------

def colour_offset(dx: float, dy: float) -> np.ndarray:
    """255 - the colour flow_to_image gives a flow of direction (dx, dy) at full magnitude.

    A flow of the same direction at a fraction r of the video's largest magnitude is drawn
    as 255 - r * colour_offset(dx, dy).
    """
    uniform = torch.tensor([float(dx), float(dy)]).reshape(2, 1, 1)
    return 255.0 - flow_to_image(uniform).reshape(3).numpy().astype(float)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_consecutive_pairs_in_order(method):
    """Pair k of a video is (frame k, frame k+1): every image shows its own rightward step."""
    size, steps = 64, np.array([1, 2, 3, 4, 4, 3, 2, 1])
    frames = video(texture(128, seed=1), size, list(steps))[None]
    images = flow_images(frames, params(method), progress=False)
    assert images.shape == (1, 8, size, size, 3) and images.dtype == np.uint8
    observed = np.median(images[0, :, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(8, -1, 3), axis=1)
    offsets = 255.0 - observed  # r_k * colour_offset(direction_k)
    directions = {"right": (1, 0), "left": (-1, 0), "down": (0, 1), "up": (0, -1)}
    for k, offset in enumerate(offsets):
        cosines = {name: offset @ colour_offset(*d) / (np.linalg.norm(offset)
                                                       * np.linalg.norm(colour_offset(*d)))
                   for name, d in directions.items()}
        assert max(cosines, key=cosines.get) == "right", (k, cosines)
        assert cosines["right"] > 0.97, (k, cosines)
    # the colour strength follows each pair's own step (1, 2, 3, 4, 4, 3, 2, 1)
    strength = np.linalg.norm(offsets, axis=1) / np.linalg.norm(colour_offset(1, 0))
    np.testing.assert_allclose(strength / strength.max(), steps / steps.max(), rtol=0.2)


def test_colour_scale_is_per_video():
    """Slow and fast motion both reach full colour; a static video stays white."""
    size = 64
    big = texture(128, seed=2)
    slow = video(big, size, [1] * 8)
    fast = video(big, size, [4] * 8)
    static = video(big, size, [0] * 8)
    images = flow_images(np.stack([slow, fast, static]), params("dis"), progress=False)
    sat = saturation(images[..., MARGIN:-MARGIN, MARGIN:-MARGIN, :])
    # one scale across all videos would leave the slow one at about a quarter of the colour (the largest
    # flow of a video, which sets its scale, may be an estimate at the image border, outside the margin)
    for v in (0, 1):
        assert np.percentile(sat[v], 99) >= 175
        assert np.median(sat[v]) >= 150
    assert abs(np.median(sat[0]) - np.median(sat[1])) <= 60
    # same direction, each on its own scale: the same hue (the direction), both strongly coloured (above)
    median_colour = np.median(images[:2, :, MARGIN:-MARGIN, MARGIN:-MARGIN].reshape(2, -1, 3), 1)
    hue = cv2.cvtColor(median_colour.astype(np.uint8)[None], cv2.COLOR_RGB2HSV)[0, :, 0].astype(int) * 2  # degrees
    assert min(abs(hue[0] - hue[1]), 360 - abs(hue[0] - hue[1])) <= 15, median_colour
    # zero flow is white
    assert (images[2] == 255).all()


def test_memmaps_in_and_out(tmp_path):
    """Read-only memmap frames, a memmap out filled in place, several chunks: same result."""
    size = 32
    rng = np.random.default_rng(3)
    big = texture(64, seed=3)
    n = flow_mod.OPENCV_CHUNK_VIDEOS + 3
    frames = np.stack([video(big, size, list(rng.integers(0, 3, 8))) for _ in range(n)])
    np.save(tmp_path / "frames.npy", frames)
    frames_mm = np.load(tmp_path / "frames.npy", mmap_mode="r")
    assert not frames_mm.flags.writeable
    expected = flow_images(frames, params("dis"), progress=False)
    with open_array(tmp_path / "flow.npy", (n, 8, size, size, 3)) as out:
        result = flow_images(frames_mm, params("dis"), out=out, progress=False)
        assert result is out
    np.testing.assert_array_equal(np.load(tmp_path / "flow.npy"), expected)


def test_logs_method_device_and_throughput(caplog):
    frames = video(texture(64, seed=6), 32, [1] * 8)[None]
    with caplog.at_level("INFO", logger="twostream.flow"):
        flow_images(frames, params("farneback"), progress=False)
    assert any("farneback" in r.message and "cpu" in r.message and "videos/s" in r.message
               for r in caplog.records)


def test_empty_input():
    images = flow_images(np.zeros((0, 9, 32, 32, 3), np.uint8), params("dis"), progress=False)
    assert images.shape == (0, 8, 32, 32, 3)


# --- RAFT ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["raft_small", "raft_large"])
def test_raft_shapes_and_out_in_place(method):
    size = RAFT_MIN_SIZE
    frames = video(texture(192, seed=4), size, [2] * 8)[None]
    out = np.zeros((1, 8, size, size, 3), np.uint8)
    torch.manual_seed(0)
    result = flow_images(frames, params(method), out=out, progress=False, batch_size=8)
    assert result is out
    assert out.dtype == np.uint8 and out.shape == (1, 8, size, size, 3)
    assert out.any()


def test_raft_batches_span_videos():
    """Batches of 3 pairs (crossing video boundaries) give the flow of whole-chunk batches."""
    size = RAFT_MIN_SIZE
    big = texture(192, seed=5)
    frames = np.stack([video(big, size, [1] * 8), video(big, size, [2] * 8, vertical=True)])
    pairs = np.stack([frames[:, :-1], frames[:, 1:]], axis=2).reshape(-1, 2, size, size, 3)
    torch.manual_seed(0)  # the same random weights for both
    with FlowEstimator(params("raft_small"), batch_size=3) as estimate:
        small_batches = estimate(pairs)
    torch.manual_seed(0)
    with FlowEstimator(params("raft_small"), batch_size=16) as estimate:
        one_batch = estimate(pairs)
    assert small_batches.shape == (16, 2, size, size)
    np.testing.assert_allclose(small_batches, one_batch, atol=1e-3)


@pytest.mark.parametrize("method", ["raft_small", "raft_large"])
def test_raft_internals_give_torchvision_forward(method):
    """The estimator's RAFT (features once per frame, only the last prediction upsampled) computes
    torchvision's RAFT.forward()[-1], by video and by pairs, across batch boundaries."""
    size = RAFT_MIN_SIZE
    big = texture(192, seed=8)
    frames = np.stack([video(big, size, [1, 2, 3, 2, 1, 0, 2, 3]), video(big, size, [2] * 8, vertical=True)])
    torch.manual_seed(0)
    with FlowEstimator(FlowParams(method=method, pretrained=False, raft_updates=3), batch_size=5) as estimate:
        by_video = estimate.videos(frames)
        pairs = np.stack([frames[:, :-1], frames[:, 1:]], axis=2).reshape(-1, 2, size, size, 3)
        by_pairs = estimate(pairs)
        x = torch.from_numpy(pairs).permute(1, 0, 4, 2, 3).float() / 127.5 - 1
        with torch.inference_mode():
            expected = estimate._model(x[0], x[1], num_flow_updates=3)[-1].numpy()
    assert by_video.shape == (2, 8, 2, size, size)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(by_video.reshape(16, 2, size, size), expected, atol=1e-4 * scale + 1e-5)
    np.testing.assert_allclose(by_pairs, expected, atol=1e-4 * scale + 1e-5)


def test_pretrained_raft_is_loaded_once_per_process(monkeypatch):
    loads = []

    def fake_load(method, pretrained):
        loads.append(method)
        return torch.nn.Linear(1, 1)
    monkeypatch.setattr(flow_mod, "_load_raft", fake_load)
    monkeypatch.setattr(flow_mod, "_RAFT_CACHE", {})
    first = flow_mod._raft_model("raft_large", True, torch.device("cpu"))
    assert flow_mod._raft_model("raft_large", True, torch.device("cpu")) is first
    flow_mod._raft_model("raft_small", True, torch.device("cpu"))
    flow_mod._raft_model("raft_small", False, torch.device("cpu"))  # random weights: drawn anew
    flow_mod._raft_model("raft_small", False, torch.device("cpu"))
    assert loads == ["raft_large", "raft_small", "raft_small", "raft_small"]


def test_a_failed_flow_image_write_is_an_error(monkeypatch):
    """Flow images are written on a background thread; its failure ends flow_images."""
    frames = video(texture(64, seed=9), 32, [1] * 8)[None].repeat(flow_mod.OPENCV_CHUNK_VIDEOS + 1, axis=0)

    def broken(flow):
        raise RuntimeError("disk full")
    monkeypatch.setattr(flow_mod, "flow_to_image", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        flow_images(frames, params("dis"), progress=False)


# --- errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    np.zeros((2, 8, 32, 32, 3), np.uint8),    # 8 frames
    np.zeros((2, 9, 32, 40, 3), np.uint8),    # not square
    np.zeros((2, 9, 32, 32), np.uint8),       # no channels
    np.zeros((2, 9, 32, 32, 1), np.uint8),    # grey
    np.zeros((2, 9, 32, 32, 3), np.float32),  # not uint8
    [[0]],                                    # not an array
])
def test_bad_frames(bad):
    with pytest.raises(ValueError, match=r"expected \(N, 9, S, S, 3\) uint8 frames"):
        flow_images(bad, params("dis"), progress=False)


@pytest.mark.parametrize("method", ["raft_small", "raft_large"])
@pytest.mark.parametrize("size", [132, 64])
def test_raft_needs_size_multiple_of_8_and_large_enough(method, size):
    frames = np.zeros((1, 9, size, size, 3), np.uint8)
    with pytest.raises(ValueError, match="image.size"):
        flow_images(frames, params(method), progress=False)


@pytest.mark.parametrize("out", [
    np.zeros((2, 8, 32, 32, 3), np.uint8),
    np.zeros((1, 8, 32, 32, 3), np.float32),
    np.zeros((1, 8, 32, 32, 3), np.uint8).view(),
])
def test_bad_out(out):
    if out.dtype == np.uint8 and out.shape[0] == 1:
        out.flags.writeable = False
    with pytest.raises(ValueError, match="out must be a writable"):
        flow_images(np.zeros((1, 9, 32, 32, 3), np.uint8), params("dis"), out=out, progress=False)


def test_cuda_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailable, match="device is 'cuda' but CUDA is not available.*in runtime.yaml"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    frames = np.zeros((1, 9, RAFT_MIN_SIZE, RAFT_MIN_SIZE, 3), np.uint8)
    with pytest.raises(DeviceUnavailable, match="device is 'cuda' but CUDA is not available"):
        flow_images(frames, params("raft_small"), progress=False, device="cuda")
    assert issubclass(DeviceUnavailable, RuntimeError)


def test_opencv_methods_ignore_a_cuda_device(monkeypatch, caplog):
    """OpenCV flow runs on the CPU whatever runtime.yaml's device says (with a warning)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    frames = video(texture(64, seed=7), 32, [1] * 8)[None]
    with caplog.at_level("WARNING", logger="twostream.flow"):
        on_cuda = flow_images(frames, params("dis"), progress=False, device="cuda")
    np.testing.assert_array_equal(on_cuda, flow_images(frames, params("dis"), progress=False))
    assert any("runs on the CPU" in r.message for r in caplog.records)


@pytest.mark.parametrize("method, batch_size, videos", [
    ("raft_small", 16, 2), ("raft_large", 8, 1), ("raft_small", 12, 3), ("dis", 3, flow_mod.OPENCV_CHUNK_VIDEOS)])
def test_chunks_hold_whole_raft_batches(method, batch_size, videos):
    assert flow_mod._chunk_videos(method, batch_size) == videos


def test_unknown_device_and_method():
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="unknown flow.method"):
        FlowEstimator(params("lucas_kanade"))


def test_flow_settings_record_only_what_the_method_uses_and_round_trip():
    from twostream.flow import DIS_PRESET, FARNEBACK, FLOW_SAMPLING, flow_params_of, flow_settings

    dis = flow_settings(FlowParams("dis", 12, True))
    assert dis == {"method": "dis", "frames": FLOW_FRAMES, "sampling": FLOW_SAMPLING, "pretrained": None,
                   "raft_updates": None, "weights": None, "opencv": {"dis_preset": int(DIS_PRESET)}}
    assert dis == flow_settings(FlowParams("dis", 3, False))  # raft settings do not change DIS flow
    assert flow_params_of(dis).method == "dis"
    raft = flow_settings(FlowParams("raft_large", 12, True))
    assert raft["weights"] == "Raft_Large_Weights.C_T_SKHT_V2" and raft["raft_updates"] == 12
    assert flow_params_of(raft) == FlowParams("raft_large", 12, True)
    assert flow_settings(FlowParams("raft_small", 2, False))["weights"] == "random (seed 0)"
    with pytest.raises(ValueError, match="RAFT weights Raft_Large_Weights.C_T_V1"):
        flow_params_of({**raft, "weights": "Raft_Large_Weights.C_T_V1"})
    with pytest.raises(ValueError, match="flow frames chosen as 7 frames"):
        flow_params_of({**dis, "frames": 7})
    with pytest.raises(ValueError, match="flow method 'tvl1'"):
        flow_params_of({**dis, "method": "tvl1"})
    # flow from another DIS preset or other Farneback parameters is other flow: refused
    with pytest.raises(ValueError, match="dis flow computed with OpenCV settings"):
        flow_params_of({**dis, "opencv": {"dis_preset": int(DIS_PRESET) + 1}})
    farneback = flow_settings(FlowParams("farneback", 12, True))
    assert farneback["opencv"]["winsize"] == FARNEBACK["winsize"] and flow_params_of(farneback).method == "farneback"
    with pytest.raises(ValueError, match="farneback flow computed with OpenCV settings"):
        flow_params_of({**farneback, "opencv": {**farneback["opencv"], "winsize": 21}})
    assert raft["opencv"] is None
