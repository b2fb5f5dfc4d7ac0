"""The embedded synthetic action dataset, written in the raw layouts of Stanford 40 and HMDB51.

`generate_stanford40` and `generate_hmdb51` fill an empty directory exactly like the real
archives do (`twostream.data.layout`: JPEGs + ImageSplits; 30 fps MPEG-4 AVIs of the size in
`data.synthetic`, where the real ones are 320x240; the HMDB51 split lists), so the offline demo
runs every later stage through the same code as the real data. The scenes themselves are rendered
by `twostream.data.render`; this module decides the file names, the official-list membership and
the split tags, and writes the files. Each
class and each image or clip draws from its own `SeedSequence(seed, spawn_key=...)`, so the
files are byte-identical for any number of worker processes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import av
import cv2
import numpy as np

from twostream.classes import HMDB51_CLASSES, STANFORD40_CLASSES, STANFORD40_TO_HMDB51
from twostream.data import layout
from twostream.data.render import render_clip, render_still
from twostream.data.sizes import STANFORD40_TRAIN_SHARE, hmdb51_tag_counts, stanford40_class_sizes
from twostream.errors import DiskFullError, MissingInputError
from twostream.io import writing
from twostream.params import SyntheticParams
from twostream.workers import worker_pool

FPS = 30
FOURCC = "FMP4"  # MPEG-4 part 2, as in HMDB51's AVIs
JPEG_QUALITY = 90
# spawn keys: the two datasets never share random streams
_STANFORD40_KEY = 40
_HMDB51_KEY = 51


def _check_root(root: Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise MissingInputError(f"{root}: output directory does not exist")
    return root


def _processes(processes: int | None) -> int:
    if processes is None:
        from twostream.params import usable_cpus
        processes = usable_cpus()
    return max(1, min(processes, len(HMDB51_CLASSES)))


def _per_class(job: Callable, jobs: Sequence[tuple], processes: int | None) -> list:
    """Run `job(*args)` for each class; in worker processes when there are several cores.

    Every item has its own seed, so the output does not depend on the number of processes.
    Workers are spawned (`twostream.workers`), so a calling script needs the usual
    `if __name__ == "__main__":` guard, as the stage scripts have.
    """
    workers = _processes(processes)
    if workers == 1:
        return [job(*args) for args in jobs]
    with worker_pool(workers) as pool:
        return list(pool.map(job, *zip(*jobs)))


def _stanford40_class(images: Path, ci: int, in_train: np.ndarray, params: SyntheticParams,
                      seed: int) -> tuple[list[str], list[str]]:
    name = STANFORD40_CLASSES[ci]
    train, test = [], []
    for k, is_train in enumerate(in_train):
        file = f"{name}_{k + 1:03d}.jpg"
        seq = np.random.SeedSequence(seed, spawn_key=(_STANFORD40_KEY, 1, ci, k))
        img = render_still(STANFORD40_TO_HMDB51[name], seq, params)
        ok, encoded = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])  # imwrite's bytes
        if not ok:
            raise OSError(f"{images / file}: could not encode JPEG")
        with writing(images / file):  # a full disk: one line naming the file (imwrite would only return False)
            (images / file).write_bytes(encoded.tobytes())
        (train if is_train else test).append(file)
    return train, test


def generate_stanford40(root: Path, params: SyntheticParams, seed: int,
                        processes: int | None = None) -> None:
    """Write the Stanford40 layout (JPEGImages/<class>_<NNN>.jpg, ImageSplits/{train,test}.txt) into `root`.

    Class sizes are unequal (`stanford40_class_sizes`), as in the real dataset, and about half
    of each class is in the official train list. `processes`: worker processes (None: one per
    CPU core); the output is the same for any number.
    """
    root = _check_root(root)
    images, lists = root / layout.STANFORD40_IMAGES, root / layout.STANFORD40_LISTS
    images.mkdir()
    lists.mkdir()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STANFORD40_KEY, 0)))
    jobs = []
    for ci, count in enumerate(stanford40_class_sizes(params.images_per_class, rng)):
        in_train = np.zeros(count, bool)
        in_train[rng.permutation(count)[:int(count * STANFORD40_TRAIN_SHARE)]] = True
        jobs.append((images, ci, in_train, params, seed))
    per_class = _per_class(_stanford40_class, jobs, processes)
    for index, name in enumerate(layout.STANFORD40_LIST_FILES):  # train.txt, test.txt
        files = sorted(f for lists_of_class in per_class for f in lists_of_class[index])
        with writing(layout.stanford40_list(root, name)):
            layout.stanford40_list(root, name).write_text("".join(f"{f}\n" for f in files))


_TITLE_WORDS = (
    "Amber", "Harbor", "Meadow", "Quiet", "Summer", "Old", "Film", "Scene", "Morning", "River",
    "Garden", "Street", "Home", "Video", "Park", "Winter", "Blue", "Red", "Silent", "Night",
    "Sunday", "Picnic", "Holiday", "Family", "Station", "Market", "Castle", "Valley", "Forest",
    "Beach", "Hill", "Town", "North", "South", "Golden", "Little", "Great", "Lost", "Bright",
    "Stone", "Iron", "Paper", "Glass", "Silver", "Autumn", "Spring", "Desert", "Island",
)


def _titles(rng: np.random.Generator, count: int) -> list[tuple[str, int]]:
    """(title, k) per clip: HMDB51 names group 1-3 clips of one source video, numbered k."""
    out: list[tuple[str, int]] = []
    used: set[str] = set()
    while len(out) < count:
        words = [str(w) for w in rng.choice(_TITLE_WORDS, size=int(rng.integers(1, 4)), replace=False)]
        if rng.uniform() < 0.4:
            words.append(str(int(rng.integers(1, 99))))
        title = "_".join(words)
        if title in used:
            continue
        used.add(title)
        out.extend((title, k) for k in range(min(int(rng.integers(1, 4)), count - len(out))))
    return out


def split_tags(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Tags of one class's clips in each official fold: 1 train, 2 test, 0 unused (`hmdb51_tag_counts`)."""
    counts = hmdb51_tag_counts(count)
    n_train, used = counts[1], counts[1] + counts[2]
    tags = []
    for _ in layout.HMDB51_FOLDS:
        t = np.zeros(count, int)
        order = rng.permutation(count)
        t[order[:n_train]] = 1
        t[order[n_train:used]] = 2
        tags.append(t)
    return tags


def _write_avi(path: Path, frames: np.ndarray) -> None:
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*FOURCC), float(FPS),
                             (width, height))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot write {FOURCC} AVI (needs an FFmpeg-enabled build)")
    try:
        for frame in frames:
            writer.write(frame)
    finally:
        writer.release()
    # OpenCV's writer does not report a failed write: a full disk (or the file size limit) shows as frames
    # missing from the index written at the end
    try:
        with av.open(str(path)) as container:
            written = len(container.streams.video[0].index_entries)
    except (av.FFmpegError, IndexError):
        written = 0
    if written != len(frames):
        raise DiskFullError(path, f"OpenCV's video writer stopped after {written} of {len(frames)} frames (a full "
                                  f"disk, a quota or the file size limit)")


def _hmdb51_class(root: Path, ci: int, params: SyntheticParams, seed: int) -> None:
    name = HMDB51_CLASSES[ci]
    class_dir = root / name
    class_dir.mkdir()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_HMDB51_KEY, 0, ci)))
    titles = _titles(rng, params.videos_per_class)
    tags = split_tags(params.videos_per_class, rng)
    files = []
    for k, (title, number) in enumerate(titles):
        clip = render_clip(name, np.random.SeedSequence(seed, spawn_key=(_HMDB51_KEY, 1, ci, k)), params)
        # unique: titles are unique and `number` counts the clips of one title
        file = f"{title}_{name}_{clip.body}_{clip.camera}_np1_{clip.view}_{clip.quality}_{number}.avi"
        _write_avi(class_dir / file, clip.frames)
        files.append(file)
    order = np.argsort(files)
    for fold, fold_tags in zip(layout.HMDB51_FOLDS, tags):
        lines = "".join(f"{files[i]} {fold_tags[i]} \n" for i in order)  # the real lists end in a space
        with writing(layout.hmdb51_list(root, name, fold)):
            layout.hmdb51_list(root, name, fold).write_text(lines)


def generate_hmdb51(root: Path, params: SyntheticParams, seed: int, processes: int | None = None) -> None:
    """Write the HMDB51 layout (<class>/<video>.avi and the split lists of the three folds) into `root`.

    `processes`: worker processes (None: one per CPU core); the output is the same for any number.
    """
    root = _check_root(root)
    if params.videos_per_class < 2:
        raise ValueError(f"videos_per_class: a class needs >= 2 clips (train and test), "
                         f"got {params.videos_per_class}")
    (root / layout.HMDB51_LISTS).mkdir()
    _per_class(_hmdb51_class, [(root, ci, params, seed) for ci in range(len(HMDB51_CLASSES))], processes)
