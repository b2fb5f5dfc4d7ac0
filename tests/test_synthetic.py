"""The synthetic dataset: raw layouts of the real datasets, determinism, and the designed cues.

Paired classes rendered from one seed share everything except what the pair differs in, which
makes the design checkable directly: motion pairs differ in flow direction, appearance pairs
have near-identical flow and differ only in the prop's texture, lead-ins carry no action.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from twostream.classes import DESIGNED_PAIRS, HMDB51_CLASSES, STANFORD40_CLASSES
from twostream.data.images import pad_resize
from twostream.data import layout
from twostream.data.programs import PROGRAMS
from twostream.data.render import LEAD_IN, render_clip, render_still
from twostream.data.synthetic import generate_hmdb51, generate_stanford40, split_tags
from twostream.data.video import flow_frame_indices
from twostream.errors import MissingInputError
from twostream.params import SyntheticParams

SMALL = SyntheticParams(images_per_class=20, videos_per_class=8, min_frames=10, max_frames=14,
                        video_width=320, video_height=240, min_image_side=120, max_image_side=200)
TINY = SyntheticParams(images_per_class=2, videos_per_class=2, min_frames=9, max_frames=10,
                       video_width=320, video_height=240, min_image_side=60, max_image_side=80)
CLIPS = SyntheticParams(images_per_class=20, videos_per_class=10, min_frames=40, max_frames=48,
                        video_width=320, video_height=240, min_image_side=120, max_image_side=200)

SPLIT_LINE = re.compile(r"^(?P<name>\S+\.avi) (?P<tag>[012]) $")  # the real files end in a space


def video_name(hmdb_class: str) -> re.Pattern:
    """HMDB51 style: <Title_words>_<class>_<body>_<camera>_np1_<view>_<quality>_<k>.avi"""
    return re.compile(rf"^[A-Z0-9][A-Za-z0-9]*(?:_[A-Z0-9][A-Za-z0-9]*)*_{hmdb_class}_[fuh]_(?:cm|nm)_np1_"
                      r"(?:fr|ba|le|ri)_(?:goo|med|bad)_\d+\.avi$")


@pytest.fixture(scope="module")
def stanford(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stanford40")
    generate_stanford40(root, SMALL, seed=0)
    return root


@pytest.fixture(scope="module")
def hmdb(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hmdb51")
    generate_hmdb51(root, SMALL, seed=0)
    return root


def _decode(path: Path) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames)


# ----------------------------------------------------------------------------- layouts

def test_stanford40_layout_and_official_split(stanford):
    files = sorted(p.name for p in (stanford / "JPEGImages").iterdir())
    counts = {}
    for name in STANFORD40_CLASSES:
        mine = [f for f in files if re.fullmatch(rf"{name}_\d{{3}}\.jpg", f)]
        counts[name] = len(mine)
        assert mine == [f"{name}_{k:03d}.jpg" for k in range(1, len(mine) + 1)], name
    assert sum(counts.values()) == len(files), "files of unknown classes"
    assert min(counts.values()) >= 0.65 * SMALL.images_per_class
    assert max(counts.values()) <= 1.35 * SMALL.images_per_class
    assert len(set(counts.values())) > 3, f"class sizes should be unequal: {counts}"

    train = (stanford / "ImageSplits" / "train.txt").read_text().splitlines()
    test = (stanford / "ImageSplits" / "test.txt").read_text().splitlines()
    assert len(train) == len(set(train)) and len(test) == len(set(test))
    assert not set(train) & set(test)
    assert sorted(train + test) == files
    for name, count in counts.items():
        n_train = sum(f.startswith(f"{name}_") and f[len(name) + 1:-4].isdigit() for f in train)
        assert abs(n_train - count / 2) <= 1, name


def test_stanford40_images_vary_in_size_within_bounds(stanford):
    shapes = set()
    for path in sorted((stanford / "JPEGImages").glob("*.jpg"))[::7]:
        image = cv2.imread(str(path))
        assert image is not None and image.ndim == 3, path
        h, w = image.shape[:2]
        for side in (h, w):
            assert SMALL.min_image_side <= side <= SMALL.max_image_side, path
        shapes.add((h, w))
    assert len({round(w / h, 1) for h, w in shapes}) > 3, "aspect ratios should vary"


def test_hmdb51_videos_are_320x240_30fps_mpeg4(hmdb):
    assert {p.name for p in hmdb.iterdir()} == {*HMDB51_CLASSES, layout.HMDB51_LISTS}
    for name in HMDB51_CLASSES:
        videos = sorted((hmdb / name).iterdir())
        assert len(videos) == SMALL.videos_per_class
        for path in videos:
            assert video_name(name).match(path.name), path.name
        for path in videos[:3]:
            capture = cv2.VideoCapture(str(path))
            fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
            assert fourcc == "FMP4"
            assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
            capture.release()
            frames = _decode(path)
            assert frames.shape[1:] == (240, 320, 3)
            assert SMALL.min_frames <= len(frames) <= SMALL.max_frames


def test_hmdb51_split_files_are_balanced_and_complete(hmdb):
    per_split = {1: [], 2: [], 3: []}
    for name in HMDB51_CLASSES:
        videos = {p.name for p in (hmdb / name).iterdir()}
        for split in (1, 2, 3):
            text = (hmdb / layout.HMDB51_LISTS / f"{name}_test_split{split}.txt").read_text()
            assert text.endswith(" \n")
            lines = text.splitlines()
            parsed = [SPLIT_LINE.match(line) for line in lines]
            assert all(parsed), lines
            assert sorted(m["name"] for m in parsed) == sorted(videos)
            tags = {m["name"]: int(m["tag"]) for m in parsed}
            per_split[split].append(tags)
            counts = [sum(t == k for t in tags.values()) for k in (0, 1, 2)]
            assert counts[0] >= 1 and counts[2] >= 1 and counts[1] > 2 * counts[2] - 1
    for split, classes in per_split.items():
        for k in (1, 2):
            assert len({sum(t == k for t in tags.values()) for tags in classes}) == 1, (split, k)
    assert per_split[1] != per_split[2] != per_split[3]


def test_hmdb51_names_group_clips_by_source_video(hmdb):
    """1-3 clips per source video (the title before the class), as in HMDB51; the lists parse."""
    for name in HMDB51_CLASSES:
        files = [p.name for p in (hmdb / name).iterdir()]
        sources = [layout.hmdb51_source_of(f, name) for f in files]
        assert all(s and s != f[:-4] for s, f in zip(sources, files)), files
        per_source = {s: sources.count(s) for s in sources}
        assert max(per_source.values()) <= 3, per_source
        entries = layout.parse_hmdb51_list(layout.hmdb51_list(hmdb, name, 1),
                                           layout.hmdb51_list(hmdb, name, 1).read_text().splitlines())
        assert sorted(video for _, video, _ in entries) == sorted(files)


def test_stanford40_names_parse_to_their_class(stanford):
    for path in (stanford / "JPEGImages").iterdir():
        assert layout.stanford40_class_of(path.name) in STANFORD40_CLASSES


def test_generators_need_an_existing_directory(tmp_path):
    with pytest.raises(MissingInputError, match="output directory does not exist"):
        generate_stanford40(tmp_path / "none", TINY, seed=0)
    with pytest.raises(MissingInputError, match="output directory does not exist"):
        generate_hmdb51(tmp_path / "none", TINY, seed=0)


def test_split_tags_default_size():
    tags = split_tags(24, np.random.default_rng(0))
    for t in tags:
        assert [int((t == k).sum()) for k in (0, 1, 2)] == [3, 15, 6]
    assert not np.array_equal(tags[0], tags[1]) and not np.array_equal(tags[1], tags[2])


# ----------------------------------------------------------------------------- determinism

def _generate(root: Path, seed: int, processes: int) -> dict[str, Path]:
    (root / "stanford40").mkdir(parents=True)
    (root / "hmdb51").mkdir()
    generate_stanford40(root / "stanford40", TINY, seed, processes)
    generate_hmdb51(root / "hmdb51", TINY, seed, processes)
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    """One seed, one dataset (whether written by one process or several); another seed, another."""
    a, b, c = (_generate(tmp_path / tag, seed, processes)
               for tag, seed, processes in (("a", 3, 1), ("b", 3, 2), ("c", 4, 1)))
    assert a.keys() == b.keys()  # image and video names, split lists
    for key, path in a.items():
        if key.endswith(".avi"):
            np.testing.assert_array_equal(_decode(path), _decode(b[key]))
        else:
            assert path.read_bytes() == b[key].read_bytes(), key
    jpegs = [key for key in a if key.endswith(".jpg") and key in c]
    assert jpegs and all(a[key].read_bytes() != c[key].read_bytes() for key in jpegs)
    claps_a, claps_c = (sorted(k for k in files if k.startswith("hmdb51/clap/")) for files in (a, c))
    assert claps_a != claps_c
    first_a, first_c = _decode(a[claps_a[0]]), _decode(c[claps_c[0]])
    assert first_a.shape != first_c.shape or not np.array_equal(first_a, first_c)


def test_render_rejects_unknown_class():
    with pytest.raises(KeyError, match="unknown HMDB51 class"):
        render_clip("applauding", np.random.SeedSequence(0), SMALL)


# ----------------------------------------------------------------------------- nuisance

def test_clips_and_stills_of_a_class_differ(hmdb):
    for name in HMDB51_CLASSES:
        a, b = (_decode(p) for p in sorted((hmdb / name).iterdir())[:2])
        middle_a, middle_b = a[len(a) // 2], b[len(b) // 2]
        assert np.abs(middle_a.astype(int) - middle_b.astype(int)).mean() > 10, name
    for name in ("clap", "drink"):
        a, b = (render_still(name, np.random.SeedSequence(0, spawn_key=(k,)), SMALL) for k in (0, 1))
        assert a.shape != b.shape or np.abs(a.astype(int) - b.astype(int)).mean() > 10


# ----------------------------------------------------------------------------- designed cues

FLOW_SIZE = 96  # the demo pads and resizes to 64-112 px before flow
SEEDS = range(4)


@functools.lru_cache(maxsize=None)
def _clip(name: str, seed: int):
    """A clip rendered in memory; one seed renders the same scene for every class."""
    return render_clip(name, np.random.SeedSequence(11, spawn_key=(seed,)), CLIPS)


def _flows(clip) -> list[np.ndarray]:
    """DIS flow between frames 3 apart inside the action, at the demo's scale, shake removed."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [cv2.cvtColor(pad_resize(f, FLOW_SIZE), cv2.COLOR_BGR2GRAY) for f in clip.frames]
    end = len(gray) - clip.lead_out
    flows = []
    for i in range(clip.lead_in, end - 3, 3):
        flow = dis.calc(gray[i], gray[i + 3], None)
        flows.append(flow - np.median(flow.reshape(-1, 2), axis=0))
    return flows


def _flow_stats(clip) -> tuple[float, float, float]:
    """Share of horizontal flow energy, mean speed and area of what moves (flow above 0.5 px)."""
    flow = np.stack(_flows(clip))
    speed = np.linalg.norm(flow, axis=-1)
    moving = speed > 0.5
    if not moving.any():
        return np.nan, 0.0, 0.0
    energy = (flow[moving] ** 2).sum(axis=0)
    return float(energy[0] / energy.sum()), float(speed[moving].mean()), float(moving.mean())


def _horizontal_share(name: str) -> float:
    """Share of horizontal flow energy where things move, averaged over clips."""
    return float(np.nanmean([_flow_stats(_clip(name, seed))[0] for seed in SEEDS]))


def test_motion_pairs_differ_in_flow_direction():
    clap, wave = _horizontal_share("clap"), _horizontal_share("wave")
    run, jump = _horizontal_share("run"), _horizontal_share("jump")
    assert clap > wave + 0.2, (clap, wave)
    assert run > jump + 0.2, (run, jump)


def test_motion_pairs_look_alike_in_single_frames():
    """Same seed: the lead-in frames of clap and wave are identical, their action frames differ."""
    for seed in SEEDS:
        clap, wave = _clip("clap", seed), _clip("wave", seed)
        assert clap.lead_in == wave.lead_in and len(clap.frames) == len(wave.frames)
        n = len(clap.frames)
        same = [np.array_equal(a, b) for a, b in zip(clap.frames, wave.frames)]
        assert all(same[:clap.lead_in]) and all(same[n - clap.lead_out:])
        assert not same[n // 2]
        # a single frame: same figure, same colours; only the hands are elsewhere
        changed = np.any(clap.frames[n // 2] != wave.frames[n // 2], axis=-1)
        assert changed.mean() < 0.12


def test_clap_and_wave_are_mostly_close_ups_framed_alike():
    """Their hands are the cue: most of their clips are upper-body framed (a larger actor), a pair's two
    clips alike, so framing tells clap or wave from the rest but never one from the other."""
    params = SyntheticParams(images_per_class=1, videos_per_class=1, min_frames=9, max_frames=9,
                             video_width=80, video_height=60, min_image_side=40, max_image_side=60)
    seeds = [np.random.SeedSequence(5, spawn_key=(k,)) for k in range(60)]
    clap = [render_clip("clap", seed, params).body for seed in seeds]
    assert clap == [render_clip("wave", seed, params).body for seed in seeds]
    assert 0.45 <= clap.count("u") / len(clap) <= 0.75
    assert {render_clip("run", seed, params).body for seed in seeds[:20]} == {"f"}


@pytest.mark.parametrize("first,second", [("drink", "smoke"), ("ride_horse", "ride_bike")])
def test_appearance_pairs_differ_in_pattern_not_in_motion(first, second):
    stats = []
    for seed in SEEDS:
        a, b = _clip(first, seed), _clip(second, seed)
        assert len(a.frames) == len(b.frames) and a.lead_in == b.lead_in
        # same seed: all but the object's pattern is identical; the patterns differ in every
        # frame, and in lightness, so the cue survives grayscale and hue jitter
        for frame_a, frame_b in zip(a.frames, b.frames):
            differ = np.any(frame_a != frame_b, axis=-1)
            assert 100 < differ.sum() < 0.2 * differ.size
            gray_a, gray_b = (cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(int) for f in (frame_a, frame_b))
            assert np.abs(gray_a - gray_b)[differ].mean() > 40
        stats.append([_flow_stats(a), _flow_stats(b)])
    # the same program moves the same silhouette: the flow looks alike
    (share_a, speed_a, area_a), (share_b, speed_b, area_b) = np.nanmean(stats, axis=0)
    assert abs(share_a - share_b) < 0.1, stats
    assert 0.8 < speed_a / speed_b < 1.25 and 0.8 < area_a / area_b < 1.25, stats


def _motion(first: np.ndarray, second: np.ndarray) -> float:
    """How fast the fastest things move between two frames, camera shake removed (px at 160)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    a, b = (cv2.cvtColor(pad_resize(f, 160), cv2.COLOR_BGR2GRAY) for f in (first, second))
    flow = dis.calc(a, b, None)
    flow -= np.median(flow.reshape(-1, 2), axis=0)
    return float(np.quantile(np.linalg.norm(flow, axis=-1), 0.999))


@pytest.mark.parametrize("name", ["run", "jump", "drink", "ride_bike", "climb", "throw"])
def test_lead_in_is_still_and_ends_before_the_middle(name):
    """During the lead-in only the nuisance moves: as much as in a clap lead-in of the same seed
    (identical to wave's, so no action), and less than during the action."""
    stills, actions = [], []
    for seed in SEEDS:
        clip, reference = _clip(name, seed), _clip("clap", seed)
        n, frames = len(clip.frames), clip.frames
        assert LEAD_IN[0] * n - 1 <= clip.lead_in <= LEAD_IN[1] * n + 1
        assert clip.lead_in < n // 2 < n - clip.lead_out
        assert clip.lead_in >= 4 and reference.lead_in == clip.lead_in
        still = _motion(frames[0], frames[3])
        nuisance = _motion(reference.frames[0], reference.frames[3])
        assert still < 1.25 * nuisance + 0.2, (seed, still, nuisance)
        stills.append(still)
        action_pairs = range(clip.lead_in, n - clip.lead_out - 3, 3)
        actions.append(max(_motion(frames[i], frames[i + 3]) for i in action_pairs))
    assert np.mean(actions) > 1.5 * np.mean(stills), (actions, stills)


@pytest.mark.parametrize("name", ["clap", "run", "drink", "ride_horse"])
def test_the_seeds_flow_frames_see_only_the_action(name):
    """The 9 flow frames around the middle (the seed's stack) start after the lead-in, whatever the clip's
    length: a scene cut or a standing actor never enters a training stack (it would set the stack's colour
    scale, or carry no motion)."""
    for n in range(9, 200):
        assert round(n * LEAD_IN[1]) <= flow_frame_indices(n)[0], n
    for seed in SEEDS:
        clip = _clip(name, seed)
        first = flow_frame_indices(len(clip.frames))[0]
        assert clip.lead_in <= first < flow_frame_indices(len(clip.frames))[-1] < len(clip.frames)


def test_designed_pairs_are_the_documented_and_rendered_ones():
    """DESIGNED_PAIRS (read by the evaluation's pair analysis) is docs/demo.md's class table: each pair names
    the cue its rows say separates them, and one program draws both classes of a pair."""
    table = (Path(__file__).resolve().parents[1] / "docs" / "demo.md").read_text()
    documented = {}  # class -> (its twin, the cue), from the class table
    for row in re.finditer(r"^\| (\w+) / \w+ \|.*\| (motion|appearance) \(vs (\w+)\) \|$", table, re.M):
        documented[row[1]] = (row[3], row[2])
    assert len(documented) == 8
    assert {frozenset((a, b)) for a, b, _ in DESIGNED_PAIRS} == {frozenset((a, b)) for a, (b, _) in documented.items()}
    for a, b, cue in DESIGNED_PAIRS:
        assert documented[a] == (b, cue) and documented[b] == (a, cue)
        assert PROGRAMS[a].__code__.co_names == PROGRAMS[b].__code__.co_names  # same program
