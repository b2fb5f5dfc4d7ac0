import re
import struct

import av
import cv2
import numpy as np
import pytest

from helpers import FIX, frame_chunks, overstate_frame_count, write_avi, write_pyav, write_textured_avi
from twostream.data import video
from twostream.data.images import pad_resize
from twostream.data.video import (VideoError, clip_centres, clip_flow_frame_indices, decode_clip, flow_frame_indices,
                                  position_indices, sample_video, sample_videos)
from twostream.errors import TwostreamError


def opencv_frames(path, size):
    """The old decoder: every frame OpenCV decodes, RGB, padded and resized."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(pad_resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), size))
    capture.release()
    return np.stack(frames)


def assert_one_line_error(info, path, problem):
    message = str(info.value)
    assert isinstance(info.value, TwostreamError)
    assert message.startswith(f"{path}: {problem}"), message
    assert message.endswith(FIX) and "\n" not in message, message
    return message


def test_flow_indices_hand_computed():
    # n = 81: mid 40; linspace(0,40,9) = 0,5,..,40 -> 20,25,30,35; linspace(40,80,9) -> 45,50,55,60
    assert flow_frame_indices(81) == [20, 25, 30, 35, 40, 45, 50, 55, 60]
    # n = 242: mid 121; linspace(0,121,9) step 15.125 -> 60.5,75.6,90.75,105.9 truncated; step 15 after
    assert flow_frame_indices(242) == [60, 75, 90, 105, 121, 136, 151, 166, 181]
    # shortest clip, n = 9: linspace(0,4,9)[4:8] = 2,2.5,3,3.5; linspace(4,8,9)[1:5] = 4.5,5,5.5,6
    assert flow_frame_indices(9) == [2, 2, 3, 3, 4, 4, 5, 5, 6]
    with pytest.raises(ValueError, match="at least 9 frames"):
        flow_frame_indices(8)


def test_position_indices_hand_computed():
    assert position_indices(81) == {"first": 0, "first_middle": 20, "middle": 40, "middle_last": 60, "last": 80}
    assert position_indices(242) == {"first": 0, "first_middle": 60, "middle": 121, "middle_last": 181,
                                      "last": 241}


def test_decode_clip_ignores_a_header_claiming_one_frame_more(tmp_path):
    path = write_avi(tmp_path / "clip.avi", 12)
    overstate_frame_count(path, 13)
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 13  # the container's claim
    capture.release()
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 13
    frames = decode_clip(path, 32)
    assert frames.shape == (12, 32, 32, 3) and frames.dtype == np.uint8
    assert [round(float(f[16, 16].mean()) / 10) for f in frames] == list(range(12))  # every frame, in order


def test_decode_clip_matches_opencv(tmp_path):
    path = write_textured_avi(tmp_path / "clip.avi", 45)
    frames = decode_clip(path, 64)
    reference = opencv_frames(path, 64)
    assert frames.shape == reference.shape == (45, 64, 64, 3)
    # PyAV and OpenCV may bundle different FFmpeg builds; both decode MPEG-4 part 2 to the same
    # pixels here (difference 0), a few levels would still be acceptable
    assert np.abs(frames.astype(int) - reference).mean() < 1.0
    assert not (frames[0] == frames[-1]).all()  # the texture moves: frames are not all alike


def test_sample_video_reads_the_right_frames(tmp_path):
    path = write_avi(tmp_path / "clip.avi", 20)
    overstate_frame_count(path, 21)
    n, positions, flow, clip_frames, clip_flow = sample_video(path, 32)
    assert n == 20 and clip_frames.shape == (0, 32, 32, 3) and clip_flow.shape == (0, 9, 32, 32, 3)
    assert positions.shape == (5, 32, 32, 3) and flow.shape == (9, 32, 32, 3)
    centre = lambda frame: float(frame[16, 16].mean())  # noqa: E731
    expected_positions = [0, 5, 10, 14, 19]  # first, first_middle, middle, middle_last, last
    for frame, index in zip(positions, expected_positions):
        assert centre(frame) == pytest.approx(10 * index, abs=4)
    for frame, index in zip(flow, flow_frame_indices(20)):
        assert centre(frame) == pytest.approx(10 * index, abs=4)
    # 64x48 padded to 64x64: 8 zero rows top and bottom -> 4 at 32 px
    assert (positions[:, :3] == 0).all() and (positions[:, -3:] == 0).all()


def test_sample_video_is_decode_clip_at_the_study_indices(tmp_path):
    path = write_textured_avi(tmp_path / "clip.avi", 30)
    frames = decode_clip(path, 48)
    n, positions, flow, clip_frames, clip_flow = sample_video(path, 48, clips=4)
    assert n == 30
    assert (positions == frames[list(position_indices(30).values())]).all()
    assert (flow == frames[flow_frame_indices(30)]).all()
    centres = clip_centres(30, 4)
    assert clip_frames.shape == (4, 48, 48, 3) and (clip_frames == frames[centres]).all()
    assert clip_flow.shape == (4, 9, 48, 48, 3)
    for k, centre in enumerate(centres):
        assert (clip_flow[k] == frames[clip_flow_frame_indices(30, centre)]).all()
    # the test clips change nothing of what training reads
    assert all((a == b).all() for a, b in zip(sample_video(path, 48)[1:3], (positions, flow)))


def test_clip_centres_spread_evenly():
    assert clip_centres(40, 1) == [20]  # one clip: the seed's middle frame
    assert clip_centres(40, 5) == [4, 12, 20, 28, 36]  # centres of five equal parts
    assert clip_centres(41, 2) == [10, 30]
    assert clip_centres(3, 5) == [0, 0, 1, 2, 2]  # more clips than frames: frames repeat
    for n in (9, 40, 64, 243):
        centres = clip_centres(n, 10)
        assert centres == sorted(centres) and 0 <= centres[0] and centres[-1] < n
    with pytest.raises(ValueError):
        clip_centres(10, 0)


def test_clip_flow_frames_are_the_seed_stack_shifted_to_the_clip():
    for n in (9, 20, 40, 64):
        assert clip_flow_frame_indices(n, n // 2) == flow_frame_indices(n)  # the middle clip: the seed's stack
    seed = np.array(flow_frame_indices(40))  # [10, 12, 15, 17, 20, 22, 24, 27, 29]: 2-3 frames apart
    assert clip_flow_frame_indices(40, 28) == (seed + 8).tolist()
    # near the ends the stack slides as far as it fits: the same spacing, no repeated frame
    assert clip_flow_frame_indices(40, 4) == (seed - 10).tolist() == [0, 2, 5, 7, 10, 12, 14, 17, 19]
    assert clip_flow_frame_indices(40, 36) == (seed + 10).tolist() == [20, 22, 25, 27, 30, 32, 34, 37, 39]
    for n in (9, 10, 40, 61, 300):
        for centre in clip_centres(n, 10):
            stack = clip_flow_frame_indices(n, centre)
            assert 0 <= stack[0] and stack[-1] < n
            assert np.array_equal(np.diff(stack), np.diff(flow_frame_indices(n)))  # the trained spacing
    with pytest.raises(ValueError):
        clip_flow_frame_indices(40, 40)


def test_truncated_clip_is_an_error(tmp_path):
    path = write_textured_avi(tmp_path / "cut.avi", 45)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.6)])
    assert len(opencv_frames(path, 32)) < 45  # OpenCV reads what is left without complaint
    with pytest.raises(VideoError) as info:
        decode_clip(path, 32)
    message = assert_one_line_error(info, path, "truncated video: the file ends inside frame ")
    first_bad, decoded = map(int, re.search(r"inside frame (\d+) of 45 \((\d+) frames decode; ", message).groups())
    assert decoded == first_bad - 1 and 0 < decoded < 45
    assert "avi: Packet corrupt" in message  # FFmpeg's words end up in the message


def test_clip_cut_between_frames_is_an_error(tmp_path):
    # a cut exactly before frame 26: no frame is damaged, but 20 of the 45 the header claims are missing
    path = write_textured_avi(tmp_path / "cut.avi", 45)
    data = path.read_bytes()
    path.write_bytes(data[:frame_chunks(data)[25]])
    with pytest.raises(VideoError) as info:
        sample_video(path, 32)
    assert_one_line_error(info, path, "truncated video: 25 of 45 frames decode")


def test_clip_losing_the_last_frame_only_passes(tmp_path):
    # the other side of HEADER_SLACK: one missing frame is what HMDB51's headers look like
    path = write_textured_avi(tmp_path / "cut.avi", 45)
    data = path.read_bytes()
    path.write_bytes(data[:frame_chunks(data)[44]])
    assert len(decode_clip(path, 32)) == 44


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_garbage_in_the_middle_is_an_error(tmp_path, seed):
    path = write_textured_avi(tmp_path / "garbage.avi", 45)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(VideoError) as info:
        sample_video(path, 32)
    message = assert_one_line_error(info, path, "damaged video: ")
    assert re.search(r"damaged video: (frame \d+ of 45 does not decode \(\w+: .+\)|only \d+ of the 45 frames)",
                     message), message


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_garbage_inside_one_frame_names_that_frame(tmp_path, seed):
    # random bytes over frame 21's data (a P-frame), its chunk header intact: only the decoder can tell
    path = write_textured_avi(tmp_path / "garbage.avi", 45)
    data = bytearray(path.read_bytes())
    offset = frame_chunks(bytes(data))[20]
    size = struct.unpack_from("<I", data, offset + 4)[0]
    start = offset + 8 + 8  # keep the VOP start code and header
    data[start:offset + 8 + size] = np.random.default_rng(seed).integers(0, 256, offset + 8 + size - start,
                                                                          dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    assert len(opencv_frames(path, 32)) == 45  # OpenCV conceals the damage: 45 frames, no error
    with pytest.raises(VideoError) as info:
        decode_clip(path, 32)
    message = assert_one_line_error(info, path, "damaged video: frame 21 of 45 does not decode (mpeg4: ")
    assert "Error at MB" in message


def test_damaged_chunk_header_is_an_error(tmp_path):
    # the size field of frame 10's chunk overwritten: the demuxer skips the frame, the decoder sees nothing
    path = write_textured_avi(tmp_path / "chunk.avi", 45)
    data = bytearray(path.read_bytes())
    offset = frame_chunks(bytes(data))[10]
    data[offset + 4:offset + 8] = b"\xff\xff\xff\x7f"
    path.write_bytes(bytes(data))
    with pytest.raises(VideoError) as info:
        decode_clip(path, 32)
    assert_one_line_error(info, path, "damaged video: ")


def test_short_video_is_an_error(tmp_path):
    path = write_avi(tmp_path / "short.avi", 8)
    with pytest.raises(VideoError, match=r"short.avi: only 8 decodable frame\(s\); at least 9"):
        sample_video(path, 32)


def test_unreadable_and_missing_video(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF0000AVI garbage")
    with pytest.raises(VideoError, match=r"bad.avi: cannot open video|bad.avi: only 0 decodable") as info:
        sample_video(bad, 32)
    assert FIX in str(info.value)
    with pytest.raises(VideoError, match=r"missing.avi: video not found"):
        decode_clip(tmp_path / "missing.avi", 32)


def test_ffmpeg_log_does_not_reach_the_terminal(tmp_path, capfd):
    path = write_textured_avi(tmp_path / "cut.avi", 45)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.6)])
    with pytest.raises(VideoError, match="Packet corrupt"):
        decode_clip(path, 32)
    out, err = capfd.readouterr()
    assert "Packet corrupt" not in out + err and "damaged" not in out + err
    assert av.logging.get_level() is None  # PyAV's default (silent) is restored


def test_sample_videos_same_results_for_any_number_of_processes(tmp_path):
    paths = [write_avi(tmp_path / f"clip{i}.avi", n) for i, n in enumerate((12, 20, 9, 15, 11))]
    paths.insert(2, write_textured_avi(tmp_path / "textured.avi", 30))
    serial = list(sample_videos(paths, 32, processes=1, clips=3))
    parallel = list(sample_videos(paths, 32, processes=2, clips=3))
    assert [s.n for s in serial] == [12, 20, 30, 9, 15, 11]  # input order
    assert [s.n for s in parallel] == [s.n for s in serial]
    for one, two in zip(serial, parallel):
        assert one.positions.dtype == two.positions.dtype == np.uint8
        assert all(a.tobytes() == b.tobytes() for a, b in zip(one[1:], two[1:]))
    sample = sample_video(paths[2], 32, clips=3)
    assert all((a == b).all() for a, b in zip(serial[2][1:], sample[1:]))


def test_sample_videos_worker_error_names_the_file(tmp_path):
    paths = [write_avi(tmp_path / f"clip{i}.avi", 12) for i in range(3)]
    paths.insert(1, write_avi(tmp_path / "short.avi", 8))
    results = sample_videos(paths, 32, processes=2)
    assert next(results)[0] == 12  # clips before the bad one come through
    with pytest.raises(VideoError) as info:
        next(results)
    assert str(info.value).startswith(f"{paths[1]}: only 8 decodable frame(s)")
    assert info.value.__cause__ is None and info.value.__context__ is None  # no traceback of the pool
    with pytest.raises(ValueError, match="processes"):
        next(sample_videos(paths, 32, processes=0))


# --------------------------------------------------------------------------- valid but unusual clips

def grey_levels(frames, rows=20):
    """Frame k's number, read back from its grey level (the rows above the moving square)."""
    return [round(float(frame[:rows].mean()) / 6) for frame in frames]


def test_variable_frame_rate_avi_with_timestamp_gaps_is_accepted(tmp_path):
    stamps = [*range(10), *range(13, 20), *range(25, 40)]  # 32 frames over 40 frame intervals: two gaps
    path = write_pyav(tmp_path / "vfr.avi", stamps)
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 40  # the header counts the gaps (empty chunks) as frames
    frames = decode_clip(path, 64)
    assert frames.shape == (32, 64, 64, 3)
    padded = frames[:, 8:28]  # 64x48 padded to 64x64: 8 zero rows on top
    assert grey_levels(padded) == list(range(32))  # every frame, in order, none repeated for the gaps
    sample = sample_video(path, 64, clips=2)
    assert sample.n == 32 and (sample.flow_frames == frames[flow_frame_indices(32)]).all()
    # a cut is still a cut: the same clip ending before its 21st chunk (17 frames and the 3 empty chunks of a gap)
    data = path.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[:frame_chunks(data)[20]])
    with pytest.raises(VideoError) as info:
        decode_clip(tmp_path / "cut.avi", 64)
    assert_one_line_error(info, tmp_path / "cut.avi", "truncated video: 17 of 40 frames decode (and 3 timestamp gaps)")


def test_avi_with_an_audio_track(tmp_path):
    path = write_pyav(tmp_path / "audio.avi", range(20), audio=True)
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video", "audio"]
    frames = decode_clip(path, 64)
    assert frames.shape == (20, 64, 64, 3) and grey_levels(frames[:, 8:28]) == list(range(20))
    assert sample_video(path, 64).n == 20


def test_h264_with_b_frames_in_display_order(tmp_path):
    path = write_pyav(tmp_path / "bframes.mp4", range(30), "libx264", options={"bf": "2", "b-adapt": "0", "g": "12"})
    with av.open(str(path)) as container:
        stamps = [packet.pts for packet in container.demux(video=0) if packet.size]
    assert stamps != sorted(stamps)  # B-frames: packets come in decoding order, the decoder reorders them
    frames = decode_clip(path, 64)
    assert frames.shape == (30, 64, 64, 3) and grey_levels(frames[:, 8:28]) == list(range(30))
    sample = sample_video(path, 64, clips=3)
    assert sample.n == 30 and grey_levels(sample.flow_frames[:, 8:28]) == flow_frame_indices(30)


def test_clip_of_exactly_9_frames(tmp_path):
    path = write_pyav(tmp_path / "nine.avi", range(9))
    sample = sample_video(path, 64, clips=2)
    assert sample.n == 9
    assert grey_levels(sample.flow_frames[:, 8:28]) == [2, 2, 3, 3, 4, 4, 5, 5, 6]
    assert grey_levels(sample.positions[:, 8:28]) == [0, 2, 4, 6, 8]


def test_portrait_clip_is_padded_left_and_right(tmp_path):
    path = write_pyav(tmp_path / "portrait.avi", range(12), width=48, height=64)
    frames = decode_clip(path, 32)
    assert frames.shape == (12, 32, 32, 3)
    assert (frames[:, :, :3] == 0).all() and (frames[:, :, -3:] == 0).all()  # 8 zero columns each side, 4 at 32 px
    assert [round(float(f[:10, 8:24].mean()) / 6) for f in frames] == list(range(12))


def test_sample_video_keeps_only_the_frames_it_uses(tmp_path, monkeypatch):
    path = write_textured_avi(tmp_path / "clip.avi", 90, width=64, height=48)
    kept = []
    real = video._decode

    def spy(*args):
        n, frames = real(*args)
        kept.append(len(frames))
        return n, frames
    monkeypatch.setattr(video, "_decode", spy)
    assert sample_video(path, 32).n == 90
    used = set(video._used_frames(90, 0))  # 14 frames; those for 89 decodable frames are kept as well
    assert len(kept) == 1 and len(used) <= kept[0] <= 2 * len(used) < 90
    # a clip whose packets predict the count badly (Matroska: no frame count, an index of keyframes only)
    # is decoded twice, still keeping only the frames it uses
    mkv = write_pyav(tmp_path / "clip.mkv", range(30))
    kept.clear()
    monkeypatch.setattr(video, "_count_packets", lambda path: 60)
    sample = sample_video(mkv, 32)
    assert sample.n == 30 and len(kept) == 2 and kept[1] == len(set(video._used_frames(30, 0)))
    assert grey_levels(sample.flow_frames[:, 4:14], rows=10) == flow_frame_indices(30)


def test_frames_larger_than_the_pixel_bound_are_refused_before_decoding(tmp_path, monkeypatch):
    path = write_avi(tmp_path / "clip.avi", 12)  # 64 x 48 = 3,072 pixels a frame
    monkeypatch.setattr(video, "MAX_PIXELS", 3000)
    with pytest.raises(VideoError) as info:
        sample_video(path, 32)
    assert_one_line_error(info, path, "frames of 64x48 pixels are larger than the 3,000 pixels decoded per frame")
