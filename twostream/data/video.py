"""Video decoding and frame choice for HMDB51 clips.

Frame choice: the five study positions and the seed's 9 flow frames around the middle of
every clip, and, for video-level testing, K test clips spread evenly over it (each a frame and
9 flow frames around its centre, with the seed's spacing).

Each clip is decoded with PyAV (FFmpeg), single-threaded: every frame that decodes, in display
order, counts; only the frames the caller uses are kept, converted as they decode (memory does
not grow with the clip's length). Which frames are used depends on the number that decode,
known only at the end: the decoding pass keeps the frames wanted for the counts that the number
of packets predicts (it, or up to `HEADER_SLACK` + 1 fewer), found by demuxing without decoding
first; a clip whose count falls outside that range is decoded a second time.

Damage is an error, never a silent grey or missing frame:

- the decoder runs with `err_detect=explode`, so a slice it would conceal (grey or smeared
  blocks) raises instead, at the frame it belongs to;
- a frame the decoder flags corrupt, a packet the demuxer flags corrupt (cut short), or an
  error FFmpeg logs while decoding is damage too;
- fewer packets than the file's index lists (AVI idx1) is damage: a chunk header was hit
  and the frame skipped before the decoder could see it;
- fewer decodable frames than the container's header claims is truncation. The header may
  claim one frame more than decodes (HMDB51's DivX AVIs do, 243 vs 242, 82 vs 81: one of
  their chunks is a 1-byte placeholder without a picture), so a shortfall of
  `HEADER_SLACK` frame is accepted; the frame count used is always the number that decode.
  A variable-frame-rate AVI counts its timestamp gaps in the header (an empty chunk per
  skipped frame interval): gaps between the packets' timestamps are no shortfall, a file
  that ends early is.

FFmpeg's log goes nowhere while a clip decodes (PyAV's default) except into the message of
the VideoError, which names the file, the problem, FFmpeg's words for it, and what to do.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import NamedTuple

import av
import av.logging
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from twostream.data.images import MAX_PIXELS, pad_resize
from twostream.errors import VideoError
from twostream.params import FLOW_FRAMES, FRAME_POSITIONS
from twostream.workers import worker_pool

HEADER_SLACK = 1  # frames the container may claim beyond those that decode (HMDB51's AVIs: one)
FIX = "replace the file, or leave it out for good: add its path under data/raw to exclude.txt"
_MAX_LOG_LINES = 4  # FFmpeg log lines quoted in an error message


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


def clip_centres(n: int, clips: int) -> list[int]:
    """The centre frames of `clips` test clips spread evenly over `n` decodable frames.

    Clip k is centred at (k + 0.5) / clips of the video, floored: the centre of equal parts, so
    one clip is the seed's middle frame (n // 2). More clips than frames repeat frames.
    """
    if n < 1 or clips < 1:
        raise ValueError(f"need n >= 1 frames and clips >= 1, got n={n}, clips={clips}")
    return [(2 * k + 1) * n // (2 * clips) for k in range(clips)]


def clip_flow_frame_indices(n: int, centre: int) -> list[int]:
    """The 9 flow frames of a test clip centred at `centre`: the seed's stack around the middle
    (`flow_frame_indices`, which spans about the middle half of the clip), moved to `centre`, so the
    flow model sees the temporal spacing it was trained on. Near the ends the stack slides only as
    far as it fits inside the clip: never a clamped, repeated frame (a zero-flow pair) that the
    training stacks do not have."""
    if not 0 <= centre < n:
        raise ValueError(f"clip centre {centre} is outside the {n} frames")
    seed = np.asarray(flow_frame_indices(n))
    shift = int(np.clip(centre - n // 2, -seed[0], n - 1 - seed[-1]))
    return (seed + shift).tolist()


def decode_clip(path: Path, size: int) -> np.ndarray:
    """Every frame of the clip at `path`, in order, zero-padded to a square and resized: (n, size, size, 3) RGB uint8.

    Raises VideoError if the file is missing or cannot be opened, if any frame is damaged,
    or if the file holds fewer frames than its header claims (beyond HEADER_SLACK).
    For tests and small clips: it holds every frame; `sample_video` keeps only those it uses.
    """
    n, frames = _decode_frames(path, range, size)
    return np.stack([frames[i] for i in range(n)])


# frames to keep for a clip of n decodable frames (`range`: all of them)
Wanted = Callable[[int], Iterable[int]]


def _decode_frames(path: Path, wanted: Wanted, size: int) -> tuple[int, dict[int, np.ndarray]]:
    """Decode the clip, checking every frame: the number that decode, and the frames `wanted(n)` names,
    as RGB padded and resized to `size` (`pad_resize`). Each frame is converted as it decodes, or dropped
    if no plausible `wanted(n)` names it: the clip's full-size frames are never held together."""
    if not path.is_file():
        raise VideoError(f"{path}: video not found; check the dataset download or the split lists")
    n, kept = _decode_checked(path, lambda predicted: _plausible(wanted, predicted), size)
    need = set(wanted(n))
    if not need <= kept.keys():  # the count fell outside the predicted range: decode again for it
        again, kept = _decode_checked(path, lambda predicted: need, size)
        if again != n:  # pragma: no cover - a deterministic decoder gives the same count twice
            raise VideoError(f"{path}: damaged video: {n} frames decode, then {again}; {FIX}")
    return n, {i: kept[i] for i in sorted(need)}


def _plausible(wanted: Wanted, predicted: int) -> set[int]:
    """Every frame `wanted` names for the counts near `predicted` (none when nothing is predicted)."""
    return {i for m in range(max(1, predicted - HEADER_SLACK - 1), predicted + 1) for i in wanted(m)}


def _decode_checked(path: Path, keep: Callable[[int], set[int]],
                    size: int) -> tuple[int, dict[int, np.ndarray]]:
    level, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.WARNING)  # hand FFmpeg's warnings and errors to the capture below
    av.logging.set_skip_repeated(False)  # else a clip's first error is dropped if the previous clip ended on it
    try:
        # local=False: FFmpeg may log from its own threads; one clip decodes at a time per process
        with av.logging.Capture(local=False) as logs:
            return _decode(path, logs, keep, size)
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip_repeated)


def _decode(path: Path, logs: list[tuple[int, str, str]], keep: Callable[[int], set[int]],
            size: int) -> tuple[int, dict[int, np.ndarray]]:
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: cannot open video ({_detail(logs, exc)}); {FIX}") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: cannot open video (no video stream in the file); {FIX}")
        stream = container.streams.video[0]
        if stream.codec_context.width * stream.codec_context.height > MAX_PIXELS:
            raise VideoError(f"{path}: frames of {stream.codec_context.width}x{stream.codec_context.height} pixels are "
                             f"larger than the {MAX_PIXELS:,} pixels decoded per frame; {FIX}")
        claimed = stream.frames  # the header's frame count; 0 when the container does not say
        indexed = len(stream.index_entries)  # frames in the file's index (AVI idx1) read at open; grows while demuxing
        keeping = keep(_count_packets(path))
        context = stream.codec_context
        context.options = {"err_detect": "explode"}  # concealed errors become exceptions
        context.thread_type = "NONE"  # one thread: errors surface at the frame they belong to
        context.thread_count = 1

        to_rgb = VideoReformatter()  # one conversion context per clip (a frame's own would be rebuilt for every frame)
        frames: dict[int, np.ndarray] = {}
        n = 0  # frames decoded
        packets = 0  # packets with data: about one per frame
        stamps: list[tuple[int, int]] = []  # (pts, duration) of the packets: timestamp gaps are no missing frames
        packet_iter = container.demux(stream)
        damage: str | None = None
        bad_frame = 0  # 1-based number of the first frame that does not decode cleanly
        cut_short = False  # the demuxer flagged that packet incomplete (it ran into the end of the file)
        try:
            for packet in packet_iter:
                packets += packet.size > 0
                if packet.size > 0 and packet.pts is not None:
                    stamps.append((packet.pts, packet.duration or 0))
                bad_frame, cut_short, errors_before = n + 1, packet.is_corrupt, _error_count(logs)
                for frame in packet.decode():
                    if frame.is_corrupt:  # concealed damage that err_detect did not turn into an exception
                        bad_frame, damage = n + 1, _detail(logs) or "the decoder flagged the frame corrupt"
                        break
                    if n in keeping:
                        frames[n] = pad_resize(to_rgb.reformat(frame, format="rgb24").to_ndarray(), size)
                    n += 1
                if damage is None and (packet.is_corrupt or _error_count(logs) > errors_before):
                    damage = _detail(logs) or "the demuxer flagged the packet incomplete"
                if damage is not None:
                    break
        except av.FFmpegError as exc:  # the decoder (err_detect=explode) or the demuxer gave up
            damage = _detail(logs, exc)
        if damage is not None:
            in_file = packets + _count_rest(packet_iter)
            of = f" of {claimed}" if claimed else ""
            # cut off: the damage is in the last packet the file holds, the index (at the end of an AVI) is
            # gone, and that packet was cut short or frames the header claims are missing
            at_end = bad_frame >= in_file - 1 and indexed <= in_file
            if at_end and (cut_short or (claimed and in_file < claimed - HEADER_SLACK)):
                raise VideoError(f"{path}: truncated video: the file ends inside frame {bad_frame}{of} "
                                 f"({n} frames decode; {damage}); {FIX}")
            raise VideoError(f"{path}: damaged video: frame {bad_frame}{of} does not decode ({damage}); {FIX}")
    if packets < indexed:  # a chunk the index lists was skipped: its header is damaged (the decoder saw nothing)
        raise VideoError(f"{path}: damaged video: only {packets} of the {indexed} frames in the file's index "
                         f"can be read (damaged chunk headers); {FIX}")
    gaps = _timestamp_gaps(stamps)
    if claimed and n + gaps < claimed - HEADER_SLACK:
        spans = f" (and {gaps} timestamp gaps)" if gaps else ""
        raise VideoError(f"{path}: truncated video: {n} of {claimed} frames decode{spans} "
                         f"(the file holds fewer frames than its header claims); {FIX}")
    if n == 0:
        raise VideoError(f"{path}: damaged video: no frame decodes ({_detail(logs) or 'no video data'}); {FIX}")
    return n, frames


def _count_packets(path: Path) -> int:
    """The video packets with data in the file, demuxed without decoding (up to where demuxing fails: the
    decode will say why): the predicted frame count. Neither the header (which counts a variable-frame-rate AVI's gaps)
    nor the index (Matroska's lists keyframes only) predicts it in every container."""
    count = 0
    try:
        with av.open(str(path), mode="r") as container:
            for packet in container.demux(container.streams.video[0]):
                count += packet.size > 0
    except (av.FFmpegError, IndexError):
        pass
    return count


def _timestamp_gaps(stamps: list[tuple[int, int]]) -> int:
    """Frame intervals skipped between the packets' timestamps (a variable-frame-rate clip's gaps, which an
    AVI header counts as frames): for each pair of neighbours in time, the whole intervals between them."""
    if len(stamps) < 2:
        return 0
    stamps = sorted(stamps)
    gaps = 0
    for (pts, duration), (following, _) in zip(stamps, stamps[1:]):
        if duration > 0:
            gaps += max(0, (following - pts) // duration - 1)
    return gaps


def _count_rest(packet_iter: Iterator[av.Packet]) -> int:
    """Packets with data left in the file (demuxed only, not decoded): tells a cut-off file from inner damage."""
    count = 0
    try:
        for packet in packet_iter:
            count += packet.size > 0
    except av.FFmpegError:
        pass
    return count


def _error_count(logs: list[tuple[int, str, str]]) -> int:
    return sum(1 for level, _, _ in logs if level <= av.logging.ERROR)


def _detail(logs: list[tuple[int, str, str]], exc: BaseException | None = None) -> str:
    """FFmpeg's own words for the problem, on one line: the logged warnings and errors, then the exception."""
    lines: list[str] = []
    for _, name, message in logs:
        line = " ".join(message.split()).removesuffix(".")
        line = f"{name}: {line}" if name else line
        if line and line not in lines:
            lines.append(line)
    if len(lines) > _MAX_LOG_LINES:
        lines = [*lines[:_MAX_LOG_LINES], f"... {len(lines) - _MAX_LOG_LINES} more"]
    if exc is not None:
        text = " ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split())
        if not any(text in line for line in lines):
            lines.append(text)
    return "; ".join(lines)


class VideoSample(NamedTuple):
    """What sample_frames keeps of one clip; S is the padded frame side, K the test clips (0: none)."""
    n: int                       # decodable frames
    positions: np.ndarray        # (5, S, S, 3): the study frames, FRAME_POSITIONS order
    flow_frames: np.ndarray      # (9, S, S, 3): the seed's flow frames around the middle
    clip_frames: np.ndarray      # (K, S, S, 3): the centre frame of each test clip
    clip_flow_frames: np.ndarray  # (K, 9, S, S, 3): the flow frames of each test clip


def sample_video(path: Path, size: int, clips: int = 0) -> VideoSample:
    """The frames of one clip that the pipeline uses (see VideoSample), from one decode pass.

    `clips` > 0 adds that many test clips spread evenly over the video (`clip_centres`)."""
    n, frames = _decode_frames(path, lambda count: _used_frames(count, clips), size)  # only the frames used
    if n < FLOW_FRAMES:
        raise VideoError(f"{path}: only {n} decodable frame(s); at least {FLOW_FRAMES} are needed for flow")
    picked = np.stack([frames[i] for i in _used_frames(n, clips)])
    a, b, c = len(FRAME_POSITIONS), len(FRAME_POSITIONS) + FLOW_FRAMES, len(FRAME_POSITIONS) + FLOW_FRAMES + clips
    return VideoSample(n, picked[:a], picked[a:b], picked[b:c],
                       picked[c:].reshape(clips, FLOW_FRAMES, size, size, 3))


def _used_frames(n: int, clips: int) -> list[int]:
    """The frames `sample_video` uses of a clip of n decodable frames, in VideoSample order (none below 9)."""
    if n < FLOW_FRAMES:
        return []
    positions = position_indices(n)
    centres = clip_centres(n, clips) if clips else []
    return [*(positions[p] for p in FRAME_POSITIONS), *flow_frame_indices(n), *centres,
            *(i for c in centres for i in clip_flow_frame_indices(n, c))]


def sample_videos(paths: Iterable[Path], size: int, processes: int, clips: int = 0) -> Iterator[VideoSample]:
    """`sample_video` for each clip, in input order, decoded by `processes` worker processes.

    processes=1 decodes in this process. The results are the same whatever `processes` is.
    At most 2 * processes clips are in flight, so memory does not grow with the number of
    clips. The first damaged clip (in input order) raises its VideoError here.
    """
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        for path in paths:
            yield sample_video(path, size, clips)
        return
    with worker_pool(processes, _init_worker) as pool:
        pending: deque[Future] = deque()
        try:
            for path in paths:
                pending.append(pool.submit(_sample_in_worker, path, size, clips))
                if len(pending) >= 2 * processes:
                    yield _result(pending.popleft())
            while pending:
                yield _result(pending.popleft())
        finally:
            for future in pending:
                future.cancel()


def _init_worker() -> None:
    cv2.setNumThreads(1)  # the pool is the parallelism; OpenCV's threads would oversubscribe the cores


def _sample_in_worker(path: Path, size: int, clips: int) -> tuple[VideoSample | None, str | None]:
    try:
        return sample_video(path, size, clips), None
    except VideoError as exc:  # returned, not raised: the parent raises it without the pool's traceback
        return None, str(exc)


def _result(future: Future) -> VideoSample:
    sample, error = future.result()
    if error is not None:
        raise VideoError(error)
    return sample
