"""Optical flow images: 9 frames per video -> 8 flow images (one per consecutive pair).

Flow is a (2, S, S) float32 field per pair in pixels, channel 0 = dx (right positive),
channel 1 = dy (down positive): the convention of RAFT and torchvision. Each video's 8
fields are turned into RGB with one `torchvision.utils.flow_to_image` call, so the colour
scale (the largest flow magnitude maps to full saturation) is per video, as in the seed.
A consequence worth knowing: a nearly static video has its tiny flow stretched to full
colour too (only an exactly zero flow stays white).

Methods (params.yaml `flow.method`):
- ``dis``: OpenCV DIS optical flow (`DIS_PRESET`) on grayscale frames; fast, CPU.
- ``farneback``: OpenCV Farneback dense flow on grayscale frames; CPU.
- ``raft_small`` / ``raft_large``: torchvision RAFT on frames scaled to [-1, 1], last of
  ``flow.raft_updates`` refinements; the seed used ``raft_large`` with default weights.

Under torchrun (runtime.yaml `torchrun_processes` > 1) `flow_shard` gives each process a contiguous share of
the videos of an array, written into the one output array (`twostream.distributed.shared_array`):
every video's flow depends on that video only, so the OpenCV methods give the same bytes however
the videos are shared out, and RAFT the same up to floating-point rounding (batch composition and
thread counts change how CPU convolutions round).
"""
from __future__ import annotations

import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import flow_to_image
from tqdm import tqdm

from twostream.device import resolve_device
from twostream.distributed import is_main, my_rows
from twostream.params import (FLOW_FRAMES, FLOW_METHODS, FLOW_PAIRS, RAFT_METHODS, RAFT_MIN_SIZE, FlowParams,
                              usable_cpus)
from twostream.weights import load_pretrained, weights_path

log = logging.getLogger(__name__)

# Loaded pretrained RAFT models, by (method, weights file, device): the flow stage calls
# `flow_images` once per subset, and the model is loaded once per process, not once per call.
_RAFT_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}

# OpenCV methods: videos per chunk (bounds memory; the pairs of a chunk run on a thread pool).
OPENCV_CHUNK_VIDEOS = 16
# DIS: OpenCV's ULTRAFAST preset. On the demo's 64 px frames the moving hands and limbs are a few
# pixels wide and move about their own size between flow frames; MEDIUM's finer refinement loses much
# of that motion and tells clap from wave and run from jump worse (docs/demo.md: the flow study).
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST
# Farneback parameters (OpenCV's documented example values): pyramid scale 0.5 with 3 levels
# (handles motion of several pixels), 15 px averaging window (robust to noise at 64-224 px),
# 3 iterations per level, polynomial expansion over 5 px neighbourhoods with sigma 1.2.
FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2,
                 flags=0)

# flow.pretrained false (tests only): RAFT's random weights from this seed, so that every process
# of a sharded run, and every run, computes the same flow.
RANDOM_WEIGHTS_SEED = 0


def check_frames(frames: np.ndarray) -> None:
    """Frames must be (N, 9, S, S, 3) uint8: 9 square RGB frames per video."""
    shape = getattr(frames, "shape", None)
    dtype = getattr(frames, "dtype", None)
    if (not isinstance(frames, np.ndarray) or frames.ndim != 5 or frames.shape[1] != FLOW_FRAMES
            or frames.shape[2] != frames.shape[3] or frames.shape[4] != 3
            or frames.dtype != np.uint8):
        raise ValueError(
            f"expected (N, {FLOW_FRAMES}, S, S, 3) uint8 frames (9 square RGB frames per video), "
            f"got {type(frames).__name__} of shape {shape} and dtype {dtype}")


def check_size(method: str, size: int) -> None:
    """RAFT needs square images of side divisible by 8 and at least RAFT_MIN_SIZE."""
    if method in RAFT_METHODS and (size % 8 != 0 or size < RAFT_MIN_SIZE):
        raise ValueError(
            f"flow.method {method} needs frames whose side is a multiple of 8 and at least "
            f"{RAFT_MIN_SIZE} px, got {size} px: set image.size in params.yaml accordingly "
            f"(the seed uses 224), or use flow.method dis or farneback")


class FlowEstimator:
    """Dense optical flow for a batch of frame pairs, one method, set up once.

    Call it with uint8 RGB pairs of shape (P, 2, S, S, 3) (pairs[:, 0] the earlier frame);
    it returns flow (P, 2, S, S) float32 in pixels, channel 0 = dx, channel 1 = dy; or call
    `videos` with whole videos (V, 9, S, S, 3) for the flow of their 8 consecutive pairs.
    RAFT runs `batch_size` pairs (runtime.yaml `flow_batch_size`) per pass; the OpenCV methods
    spread the pairs over a thread pool (OpenCV releases the GIL). Use as a context manager, or
    call close(), to release the pool.
    """

    def __init__(self, params: FlowParams, device: str = "cpu", batch_size: int = 16) -> None:
        if params.method not in FLOW_METHODS:
            raise ValueError(f"unknown flow.method {params.method!r}; one of {', '.join(FLOW_METHODS)}")
        self.params = params
        self.method = params.method
        self.batch_size = batch_size
        self._pool: ThreadPoolExecutor | None = None
        self._model: torch.nn.Module | None = None
        if self.method in RAFT_METHODS:
            self.device = resolve_device(device)
            self._model = _raft_model(self.method, params.pretrained, self.device)
        else:
            if device == "cuda":
                log.warning("device is 'cuda' but flow.method %s runs on the CPU (OpenCV)", self.method)
            self.device = torch.device("cpu")
            self._local = threading.local()
            # the machine's cores shared by the processes torchrun started on it
            threads = max(1, usable_cpus() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
            self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="flow")

    def __enter__(self) -> FlowEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __call__(self, pairs: np.ndarray) -> np.ndarray:
        if (not isinstance(pairs, np.ndarray) or pairs.ndim != 5 or pairs.shape[1] != 2
                or pairs.shape[2] != pairs.shape[3] or pairs.shape[4] != 3
                or pairs.dtype != np.uint8):
            raise ValueError(
                f"expected (P, 2, S, S, 3) uint8 frame pairs, got {type(pairs).__name__} of "
                f"shape {getattr(pairs, 'shape', None)} and dtype {getattr(pairs, 'dtype', None)}")
        check_size(self.method, pairs.shape[2])
        if len(pairs) == 0:
            return np.zeros((0, 2, pairs.shape[2], pairs.shape[3]), np.float32)
        if self._model is not None:
            return self._raft(pairs)
        return self._opencv(pairs)

    def videos(self, frames: np.ndarray) -> np.ndarray:
        """Flow of each video's consecutive pairs: (V, 9, S, S, 3) uint8 -> (V, 8, 2, S, S) float32.

        RAFT encodes each frame's features once (a middle frame is the second image of one pair
        and the first of the next: 9 feature passes per video instead of 16)."""
        check_frames(frames)
        v, count, size = frames.shape[:3]
        check_size(self.method, size)
        if self._model is None or v == 0:
            pairs = np.stack([frames[:, :-1], frames[:, 1:]], axis=2).reshape(-1, 2, size, size, 3)
            return self(pairs).reshape(v, count - 1, 2, size, size)
        with torch.inference_mode():
            images = self._to_model(frames.reshape(-1, size, size, 3))  # (V*9, 3, S, S)
            features = torch.cat([self._model.feature_encoder(images[i:i + self.batch_size])
                                  for i in range(0, len(images), self.batch_size)])
            features = features.unflatten(0, (v, count))
            images = images.unflatten(0, (v, count))
            flow = self._refine(images[:, :-1].flatten(0, 1), features[:, :-1].flatten(0, 1),
                                features[:, 1:].flatten(0, 1))
        return flow.reshape(v, count - 1, 2, size, size)

    def _to_model(self, images: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1] on the device (converted there)."""
        return torch.from_numpy(np.array(images)).to(self.device).permute(0, 3, 1, 2).float() \
            .div_(127.5).sub_(1.0)

    def _raft(self, pairs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            first, second = self._to_model(pairs[:, 0]), self._to_model(pairs[:, 1])
            features = [torch.cat([self._model.feature_encoder(images[i:i + self.batch_size])
                                   for i in range(0, len(images), self.batch_size)]) for images in (first, second)]
            return self._refine(first, *features)

    def _refine(self, first: torch.Tensor, features1: torch.Tensor, features2: torch.Tensor) -> np.ndarray:
        """RAFT after its feature encoder, `batch_size` pairs per pass: torchvision's RAFT.forward
        (context encoder, correlation pyramid, `raft_updates` refinements), except that only the
        last prediction is upsampled, the one the pipeline uses (tests compare it with forward)."""
        from torchvision.models.optical_flow._utils import make_coords_grid, upsample_flow

        model, batch, flows = self._model, self.batch_size, []
        hidden_size = model.update_block.hidden_state_size
        for start in range(0, len(first), batch):
            fmap1, fmap2 = features1[start:start + batch], features2[start:start + batch]
            model.corr_block.build_pyramid(fmap1, fmap2)
            context = model.context_encoder(first[start:start + batch])
            hidden, context = torch.split(context, [hidden_size, context.shape[1] - hidden_size], dim=1)
            hidden, context = torch.tanh(hidden), F.relu(context)
            n, _, h, w = fmap1.shape
            coords0 = make_coords_grid(n, h, w).to(fmap1.device)
            coords1 = coords0.clone()
            for _ in range(self.params.raft_updates):
                corr = model.corr_block.index_pyramid(centroids_coords=coords1)
                hidden, delta = model.update_block(hidden, context, corr, coords1 - coords0)
                coords1 = coords1 + delta
            up_mask = None if model.mask_predictor is None else model.mask_predictor(hidden)
            flow = upsample_flow(flow=coords1 - coords0, up_mask=up_mask)
            flows.append(flow.float().cpu().numpy())
        return np.concatenate(flows)

    def _opencv(self, pairs: np.ndarray) -> np.ndarray:
        assert self._pool is not None, "FlowEstimator used after close()"
        flow = np.empty((len(pairs), 2, pairs.shape[2], pairs.shape[3]), np.float32)

        def one(i: int) -> None:
            first = cv2.cvtColor(np.ascontiguousarray(pairs[i, 0]), cv2.COLOR_RGB2GRAY)
            second = cv2.cvtColor(np.ascontiguousarray(pairs[i, 1]), cv2.COLOR_RGB2GRAY)
            if self.method == "dis":
                dis = getattr(self._local, "dis", None)
                if dis is None:  # DIS objects keep state: one per thread
                    dis = self._local.dis = cv2.DISOpticalFlow_create(DIS_PRESET)
                field = dis.calc(first, second, None)
            else:
                field = cv2.calcOpticalFlowFarneback(first, second, None, **FARNEBACK)
            flow[i] = field.transpose(2, 0, 1)  # (S, S, 2) -> (2, S, S)

        for _ in self._pool.map(one, range(len(pairs))):
            pass  # re-raises the first error of any pair
        return flow


# How the 9 flow frames of a clip are chosen (twostream.data.video.flow_frame_indices), as a checkpoint records it.
FLOW_SAMPLING = "seed: mid = n // 2; linspace(0, mid, 9)[4:8], mid, linspace(mid, n - 1, 9)[1:5]"


def flow_settings(params: FlowParams) -> dict:
    """What flow images are computed with, as plain data: the flow stage writes it next to its arrays
    (flow.json) and the training stages copy it into the checkpoint, so `twostream predict` computes
    flow exactly as the model was trained on. Settings a method does not use are None, so changing one
    (raft_updates under dis) leaves the file, and the models trained on it, unchanged."""
    raft = params.method in RAFT_METHODS
    return {"method": params.method, "frames": FLOW_FRAMES, "sampling": FLOW_SAMPLING,
            "pretrained": bool(params.pretrained) if raft else None,
            "raft_updates": int(params.raft_updates) if raft else None,
            "weights": (str(_raft_weights(params.method)[1]) if params.pretrained else
                        f"random (seed {RANDOM_WEIGHTS_SEED})") if raft else None,
            "opencv": _opencv_settings(params.method)}


def _opencv_settings(method: str) -> dict | None:
    """The fixed settings of an OpenCV method (DIS's preset, Farneback's parameters), None for RAFT:
    recorded so that a model trained on flow from other settings is refused, not fed other flow."""
    if method == "dis":
        return {"dis_preset": int(DIS_PRESET)}
    if method == "farneback":
        return {key: (float(value) if isinstance(value, float) else int(value)) for key, value in FARNEBACK.items()}
    return None


def flow_params_of(settings: dict) -> FlowParams:
    """The FlowParams that reproduce recorded `flow_settings`; ValueError when this installation
    would compute other flow (unknown method, other frame sampling, other RAFT weights)."""
    method = settings.get("method")
    if method not in FLOW_METHODS:
        raise ValueError(f"flow method {method!r} is not one of {', '.join(FLOW_METHODS)}")
    if settings.get("frames") != FLOW_FRAMES or settings.get("sampling") != FLOW_SAMPLING:
        raise ValueError(f"flow frames chosen as {settings.get('frames')} frames by {settings.get('sampling')!r}, "
                         f"this version chooses {FLOW_FRAMES} by {FLOW_SAMPLING!r}")
    if settings.get("opencv") != _opencv_settings(method):
        raise ValueError(f"{method} flow computed with OpenCV settings {settings.get('opencv')}, this version "
                         f"uses {_opencv_settings(method)}")
    raft = method in RAFT_METHODS
    params = FlowParams(method=method, pretrained=bool(settings.get("pretrained")) if raft else True,
                        raft_updates=int(settings.get("raft_updates") or 1) if raft else 1)
    if raft and flow_settings(params)["weights"] != settings.get("weights"):
        raise ValueError(f"flow computed with RAFT weights {settings.get('weights')}, this torchvision's "
                         f"are {flow_settings(params)['weights']}")
    return params


def _raft_weights(method: str):
    from torchvision.models.optical_flow import (Raft_Large_Weights, Raft_Small_Weights,
                                                 raft_large, raft_small)

    return ((raft_small, Raft_Small_Weights.DEFAULT) if method == "raft_small"
            else (raft_large, Raft_Large_Weights.DEFAULT))


def _raft_model(method: str, pretrained: bool, device: torch.device) -> torch.nn.Module:
    """RAFT on `device` in eval mode; a pretrained one is loaded once per process and reused.
    (Random weights, for tests only, are drawn from a fixed seed: the same in every process and run.)"""
    if not pretrained:
        return _load_raft(method, pretrained).to(device).eval()
    key = (method, str(weights_path(_raft_weights(method)[1])), str(device))
    if key not in _RAFT_CACHE:
        _RAFT_CACHE[key] = _load_raft(method, pretrained).to(device).eval()
    return _RAFT_CACHE[key]


def _load_raft(method: str, pretrained: bool) -> torch.nn.Module:
    build, weights = _raft_weights(method)
    with torch.random.fork_rng(devices=[]):  # the same random weights in every process and run
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        model = build(weights=None, progress=False)
    if pretrained:
        model.load_state_dict(load_pretrained(weights))
        log.info("%s: loaded pretrained weights %s", method, weights)
    else:
        log.warning("%s: random weights (flow.pretrained is false); the flow is meaningless "
                    "outside tests", method)
    return model


def _chunk_videos(method: str, batch_size: int) -> int:
    """Videos per chunk: for RAFT, chunks hold a whole number of batches (lcm of batch, 8)."""
    if method in RAFT_METHODS:
        return math.lcm(batch_size, FLOW_PAIRS) // FLOW_PAIRS
    return OPENCV_CHUNK_VIDEOS


def flow_images(frames: np.ndarray, params: FlowParams, out: np.ndarray | None = None,
                progress: bool = True, device: str = "cpu", batch_size: int = 16) -> np.ndarray:
    """8 RGB flow images per video, (N, 8, S, S, 3) uint8, from (N, 9, S, S, 3) uint8 frames.

    Videos are processed in chunks, so `frames` may be a read-only memmap and `out` a
    writable memmap (e.g. from twostream.io.open_array) filled in place: memory stays
    bounded whatever N. Returns `out` (or a new array when `out` is None).
    """
    check_frames(frames)
    n, _, size = frames.shape[:3]
    check_size(params.method, size)
    shape = (n, FLOW_PAIRS, size, size, 3)
    if out is None:
        out = np.empty(shape, np.uint8)
    elif (not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != np.uint8
          or not out.flags.writeable):
        raise ValueError(
            f"out must be a writable {shape} uint8 array, got {type(out).__name__} of shape "
            f"{getattr(out, 'shape', None)}, dtype {getattr(out, 'dtype', None)}"
            + ("" if not isinstance(out, np.ndarray) or out.flags.writeable else ", read-only"))

    started = time.perf_counter()
    chunk = _chunk_videos(params.method, batch_size)

    def write_images(start: int, flow: np.ndarray) -> None:
        for v, video_flow in enumerate(flow):
            images = flow_to_image(torch.from_numpy(video_flow))  # one scale per video
            out[start + v] = images.permute(0, 2, 3, 1).numpy()

    # Flow images and array writes of chunk k run on a writer thread while the estimator computes
    # chunk k+1 (on a GPU, the CPU work hides behind the next batches); one chunk waits at most,
    # so memory stays bounded.
    with FlowEstimator(params, device, batch_size) as estimate, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="flow-images") as writer, \
            tqdm(total=n, desc=f"flow ({params.method})", unit="video",
                 disable=not progress) as bar:
        pending, pending_videos = None, 0
        for start in range(0, n, chunk):
            videos = np.asarray(frames[start:start + chunk])
            # consecutive pairs (f0, f1), ..., (f7, f8) of each video, videos in order
            flow = estimate.videos(videos)
            if pending is not None:
                pending.result()  # re-raises a failed write
                bar.update(pending_videos)
            pending, pending_videos = writer.submit(write_images, start, flow), len(videos)
        if pending is not None:
            pending.result()
            bar.update(pending_videos)
        device = estimate.device
    elapsed = time.perf_counter() - started
    log.info("flow: method %s on %s, %d videos of %d px in %.1f s (%.2f videos/s)",
             params.method, device, n, size, elapsed, n / elapsed if elapsed > 0 else float("inf"))
    return out


def flow_shard(frames: np.ndarray, params: FlowParams, out: np.ndarray, progress: bool = True, device: str = "cpu",
               batch_size: int = 16) -> np.ndarray:
    """`flow_images` of this process's contiguous share of the videos (`distributed.my_rows`: all of
    them with one process) into the same rows of `out`, an (N, 8, S, S, 3) array every process fills
    (`distributed.shared_array`). Any (N, 9, S, S, 3) frames array is split the same way."""
    check_frames(frames)
    rows = my_rows(len(frames))
    if len(out) != len(frames):
        raise ValueError(f"out has {len(out)} rows for {len(frames)} videos")
    flow_images(frames[rows], params, out=out[rows], progress=progress and is_main(), device=device,
                batch_size=batch_size)
    return out
