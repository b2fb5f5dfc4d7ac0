import struct

import cv2
import numpy as np
import pytest

from twostream.data.video import (VideoError, count_frames, flow_frame_indices, position_indices, read_frames,
                                  sample_video)


def write_avi(path, n, width=64, height=48):
    """A clip whose frame i has grey level 10 * i (so frames can be recognised after decoding)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FMP4"), 30, (width, height))
    assert writer.isOpened()
    for i in range(n):
        writer.write(np.full((height, width, 3), 10 * i, np.uint8))
    writer.release()
    return path


def overstate_frame_count(path, claimed):
    """Patch the AVI headers (avih.dwTotalFrames, strh.dwLength, dmlh) to claim `claimed` frames,
    as HMDB51's files do (their container reports one frame more than decodes)."""
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.find(b"avih") + 8 + 16, claimed)
    struct.pack_into("<I", data, data.find(b"strh") + 8 + 32, claimed)
    if (dmlh := data.find(b"dmlh")) >= 0:
        struct.pack_into("<I", data, dmlh + 8, claimed)
    path.write_bytes(bytes(data))


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


def test_count_frames_ignores_a_lying_header(tmp_path):
    path = write_avi(tmp_path / "clip.avi", 12)
    overstate_frame_count(path, 13)
    capture = cv2.VideoCapture(str(path))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 13  # the container's claim
    capture.release()
    assert count_frames(path) == 12


def test_sample_video_reads_the_right_frames(tmp_path):
    path = write_avi(tmp_path / "clip.avi", 20)
    overstate_frame_count(path, 21)
    n, positions, flow = sample_video(path, 32)
    assert n == 20
    assert positions.shape == (5, 32, 32, 3) and flow.shape == (9, 32, 32, 3)
    centre = lambda frame: float(frame[16, 16].mean())  # noqa: E731
    expected_positions = [0, 5, 10, 14, 19]  # first, first_middle, middle, middle_last, last
    for frame, index in zip(positions, expected_positions):
        assert centre(frame) == pytest.approx(10 * index, abs=4)
    for frame, index in zip(flow, flow_frame_indices(20)):
        assert centre(frame) == pytest.approx(10 * index, abs=4)
    # 64x48 padded to 64x64: 8 zero rows top and bottom -> 4 at 32 px
    assert (positions[:, :3] == 0).all() and (positions[:, -3:] == 0).all()


def test_read_frames_past_the_end_names_the_file(tmp_path):
    path = write_avi(tmp_path / "clip.avi", 10)
    with pytest.raises(VideoError, match=r"clip.avi: frame 10 does not decode"):
        read_frames(path, [0, 12])


def test_short_video_is_an_error(tmp_path):
    path = write_avi(tmp_path / "short.avi", 8)
    with pytest.raises(VideoError, match=r"short.avi: only 8 decodable frame\(s\); at least 9"):
        sample_video(path, 32)


def test_unreadable_and_missing_video(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF0000AVI garbage")
    with pytest.raises(VideoError, match=r"bad.avi: cannot open video|bad.avi: only 0 decodable"):
        sample_video(bad, 32)
    with pytest.raises(VideoError, match=r"missing.avi: video not found"):
        count_frames(tmp_path / "missing.avi")
