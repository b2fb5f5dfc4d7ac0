"""Video decoding and frame choice for HMDB51 clips.

OpenCV's reported frame count (CAP_PROP_FRAME_COUNT) comes from the container and
can exceed what decodes (HMDB51's AVIs often report one frame too many), so the
frame count used here is always the number of frames that actually decode.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from twostream.data.images import pad_resize
from twostream.params import FRAME_POSITIONS

FLOW_FRAMES = 9  # 9 frames -> 8 consecutive pairs -> 8 flow images


class VideoError(ValueError):
    """A video that cannot be opened, decoded, or is too short."""


def position_indices(n: int) -> dict[str, int]:
    """The five frame positions of the study for a clip of `n` decodable frames.

    first = 0, middle = n // 2, last = n - 1, and the frames halfway between them.
    """
    if n < 1:
        raise ValueError(f"a clip needs at least one frame, got n={n}")
    mid = n // 2
    return {"first": 0, "first_middle": mid // 2, "middle": mid,
            "middle_last": (mid + n - 1) // 2, "last": n - 1}


def flow_frame_indices(n: int) -> list[int]:
    """The 9 frames for flow: 4 before the middle, the middle, 4 after.

    With mid = n // 2: the last 4 (before mid) of linspace(0, mid, 9), mid, and the
    first 4 (after mid) of linspace(mid, n - 1, 9), truncated to integers. Short
    clips can repeat an index (zero flow for that pair); fewer than 9 frames is an error.
    """
    if n < FLOW_FRAMES:
        raise ValueError(f"flow needs at least {FLOW_FRAMES} frames, got n={n}")
    mid = n // 2
    before = np.linspace(0, mid, 9, dtype=int)[4:8]
    after = np.linspace(mid, n - 1, 9, dtype=int)[1:5]
    return [*before.tolist(), mid, *after.tolist()]


def _open(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise VideoError(f"{path}: video not found")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path}: cannot open video (corrupt or unsupported codec)")
    return capture


def count_frames(path: Path) -> int:
    """Number of frames that decode (not the container's claim)."""
    capture = _open(path)
    try:
        n = 0
        while capture.grab():
            n += 1
        return n
    finally:
        capture.release()


def read_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Decode the frames at `indices` (RGB uint8), in one sequential pass."""
    wanted = set(indices)
    frames: dict[int, np.ndarray] = {}
    capture = _open(path)
    try:
        for index in range(max(wanted) + 1):
            if not capture.grab():
                raise VideoError(f"{path}: frame {index} does not decode (needed frames {sorted(wanted)})")
            if index in wanted:
                ok, frame = capture.retrieve()
                if not ok:
                    raise VideoError(f"{path}: frame {index} does not decode")
                frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()
    return frames


def sample_video(path: Path, size: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Decodable frame count, the 5 position frames (5, S, S, 3) and the 9 flow frames (9, S, S, 3)."""
    n = count_frames(path)
    if n < FLOW_FRAMES:
        raise VideoError(f"{path}: only {n} decodable frame(s); at least {FLOW_FRAMES} are needed for flow")
    positions = position_indices(n)
    flow_indices = flow_frame_indices(n)
    frames = read_frames(path, [*positions.values(), *flow_indices])
    resized = {i: pad_resize(f, size) for i, f in frames.items()}
    return (n, np.stack([resized[positions[p]] for p in FRAME_POSITIONS]),
            np.stack([resized[i] for i in flow_indices]))
