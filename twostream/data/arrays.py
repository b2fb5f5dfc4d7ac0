"""The file names of the prepared data: every name the data stages write and the datasets and stages read.

    data/images/  stanford40_<subset>.npy                 (N, S, S, 3): pad_resize
    data/frames/  hmdb51_<subset>_positions.npy           (N, 5, S, S, 3): the study frames (sample_frames)
                  hmdb51_<subset>_flow_frames.npy         (N, 9, S, S, 3): the frames the flow is made from
                  hmdb51_test_clip_frames.npy             (N, K, S, S, 3): the frame of each of K test clips
                  hmdb51_test_clip_flow_frames.npy        (N, K, 9, S, S, 3): the flow frames of each test clip
    data/flow/    hmdb51_<subset>.npy                     (N, 8, S, S, 3): the flow images (flow)
                  hmdb51_test_clips.npy                   (N, K, 8, S, S, 3): one flow stack per test clip
                  flow.json                               the settings the flow was made with
    each directory: the manifests its arrays follow row by row (`manifests.manifest_name`)

The directories are the stages' arguments (dvc.yaml); dvc.yaml spells these names as literal paths,
and tests/test_arrays.py checks that they are the names made here.
"""
from __future__ import annotations

from twostream.data.manifests import manifest_name
from twostream.params import SUBSETS

TEST = "test"  # the subset that also has K test clips per video
FLOW_SETTINGS = "flow.json"


def images(subset: str) -> str:
    """data/images/: the padded and resized Stanford 40 images of a subset."""
    return f"stanford40_{subset}.npy"


def positions(subset: str) -> str:
    """data/frames/: the frames at the five study positions of every HMDB51 clip of a subset."""
    return f"hmdb51_{subset}_positions.npy"


def flow_frames(subset: str) -> str:
    """data/frames/: the 9 frames each HMDB51 clip's flow stack is computed from."""
    return f"hmdb51_{subset}_flow_frames.npy"


def clip_frames(subset: str = TEST) -> str:
    """data/frames/: the centre frame of each of the K test clips of every test video."""
    return f"hmdb51_{subset}_clip_frames.npy"


def clip_flow_frames(subset: str = TEST) -> str:
    """data/frames/: the 9 flow frames of each of the K test clips of every test video."""
    return f"hmdb51_{subset}_clip_flow_frames.npy"


def flow(subset: str) -> str:
    """data/flow/: the 8 flow images of every HMDB51 clip of a subset."""
    return f"hmdb51_{subset}.npy"


def clip_flow(subset: str = TEST) -> str:
    """data/flow/: the flow stack of each of the K test clips of every test video."""
    return f"hmdb51_{subset}_clips.npy"


def files(directory: str) -> tuple[str, ...]:
    """Every file name the stage writing data/<directory> (images, frames or flow) puts there."""
    if directory == "images":
        return tuple(n for s in SUBSETS for n in (images(s), manifest_name("stanford40", s)))
    if directory == "frames":
        return (*(n for s in SUBSETS for n in (positions(s), flow_frames(s), manifest_name("hmdb51", s))),
                clip_frames(), clip_flow_frames())
    if directory == "flow":
        return (*(n for s in SUBSETS for n in (flow(s), manifest_name("hmdb51", s))), clip_flow(), FLOW_SETTINGS)
    raise ValueError(f"no prepared data directory {directory!r}: expected images, frames or flow")
