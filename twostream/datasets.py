"""Datasets over the prepared arrays (memmapped .npy) and their manifests, and the training sampler.

Each training stage reads a few big arrays written by the data stages; samples are copied out
of the memmap one at a time, so memory stays small and workers start fast.

Augmentation is a pure function of (seed, epoch, sample): the training sampler yields
`(index, sample_seed)` pairs and the dataset draws that sample's augmentation from its own
seed. So the DataLoader's worker count, and the number of data-parallel processes, change
how fast the pipeline runs but not a single augmented pixel.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from twostream.data import arrays
from twostream.data.manifests import manifest_name, read_manifest
from twostream.errors import InputError
from twostream.io import load_array
from twostream.params import FRAME_POSITIONS, AugmentParams
from twostream.transforms import flow_augmentation, flow_stack, frame_transform


class LazyArray:
    """A .npy file opened as a memmap on first access in each process.

    Pickles as its path, so DataLoader workers started by spawn (macOS, Windows) open
    the file themselves instead of receiving a copy of the whole array.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.shape = load_array(self.path).shape  # reads the header; checks the file exists
        self._array: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if self._array is None:
            self._array = load_array(self.path)
        return self._array[index]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}


class ClipArray(LazyArray):
    """A (N, K, ...) array of K test clips per video, seen as N * K samples: sample i is clip i % K of
    video i // K (the clips of a video are consecutive)."""

    def __init__(self, path: Path):
        super().__init__(path)
        if len(self.shape) < 3:
            raise InputError(f"{self.path}: expected (videos, clips, ...) test-clip arrays, got shape {self.shape}; "
                             f"re-run the data stages (`dvc repro`)")
        self.videos, self.clips = self.shape[:2]
        self.shape = (self.videos * self.clips, *self.shape[2:])

    def __getitem__(self, index):
        if self._array is None:
            self._array = load_array(self.path)
        video, clip = divmod(int(index), self.clips)
        return self._array[video, clip]


def _chw(array: np.ndarray) -> torch.Tensor:
    """HWC (or NHWC) uint8 from a memmap -> an owned CHW (NCHW) tensor."""
    return torch.from_numpy(np.array(array)).movedim(-1, -3)


@dataclass(frozen=True)
class SubsetArrays:
    """The arrays and labels of one subset (train, val or test) of one dataset, of equal length."""
    arrays: dict[str, np.ndarray | LazyArray]
    labels: np.ndarray
    manifest_path: Path

    def __post_init__(self) -> None:
        for name, array in self.arrays.items():
            if len(array) != len(self.labels):
                raise InputError(f"{self.manifest_path}: {len(self.labels)} rows but {name} array has "
                                 f"{len(array)}; re-run the data stages (`dvc repro`)")

    @property
    def image_size(self) -> int:
        return int(next(iter(self.arrays.values())).shape[-2])


def stanford40_subset(images_dir: Path, subset: str) -> SubsetArrays:
    manifest = Path(images_dir) / manifest_name("stanford40", subset)
    return SubsetArrays({"frames": LazyArray(Path(images_dir) / arrays.images(subset))},
                        read_manifest(manifest, "stanford40")["label"].to_numpy(), manifest)


def hmdb51_subset(frames_dir: Path | None, flow_dir: Path | None, subset: str) -> SubsetArrays:
    """HMDB51 frames at all positions (frames_dir) and/or flow images (flow_dir), same clips in the same order."""
    found, manifests = {}, []
    if frames_dir is not None:
        found["positions"] = LazyArray(Path(frames_dir) / arrays.positions(subset))
        manifests.append(Path(frames_dir) / manifest_name("hmdb51", subset))
    if flow_dir is not None:
        found["flow"] = LazyArray(Path(flow_dir) / arrays.flow(subset))
        manifests.append(Path(flow_dir) / manifest_name("hmdb51", subset))
    if not manifests:
        raise ValueError("hmdb51_subset needs frames_dir or flow_dir")
    first, manifest = _same_clips(manifests)
    return SubsetArrays(found, manifest["label"].to_numpy(), first)


def _same_clips(manifests: list[Path]):
    """(path, content) of the first manifest, after checking that the others list the same clips."""
    first, *others = manifests
    manifest = read_manifest(first, "hmdb51")
    for path in others:
        if list(read_manifest(path, "hmdb51")["path"]) != list(manifest["path"]):
            raise InputError(f"{path} and {first} list different clips; re-run the data stages (`dvc repro`)")
    return first, manifest


def hmdb51_test_clips(frames_dir: Path | None, flow_dir: Path | None) -> tuple[SubsetArrays, int]:
    """The K test clips of every HMDB51 test video as N * K samples (`ClipArray`), and K: the clip frames
    as "frames" (frames_dir) and/or their flow stacks as "flow" (flow_dir), each with its video's label.
    The datasets read them with position None (FrameDataset's "frames", not a study position)."""
    found, manifests = {}, []
    if frames_dir is not None:
        found["frames"] = ClipArray(Path(frames_dir) / arrays.clip_frames())
        manifests.append(Path(frames_dir) / manifest_name("hmdb51", "test"))
    if flow_dir is not None:
        found["flow"] = ClipArray(Path(flow_dir) / arrays.clip_flow())
        manifests.append(Path(flow_dir) / manifest_name("hmdb51", "test"))
    if not manifests:
        raise ValueError("hmdb51_test_clips needs frames_dir or flow_dir")
    first, manifest = _same_clips(manifests)
    clips = {name: array.clips for name, array in found.items()}
    if len(set(clips.values())) != 1 or any(a.videos != len(manifest) for a in found.values()):
        raise InputError(f"{first}: {len(manifest)} test videos, but the test-clip arrays hold "
                         + ", ".join(f"{a.path} {a.videos} x {a.clips}" for a in found.values())
                         + "; re-run the data stages (`dvc repro`)")
    k = next(iter(clips.values()))
    return SubsetArrays(found, np.repeat(manifest["label"].to_numpy(), k), first), k


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The augmentation seed of one sample in one epoch: independent streams, same on every process."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class SeededSampler(DistributedSampler):
    """torch's DistributedSampler (this rank's share of a per-epoch permutation) yielding
    `(index, sample_seed)`, so each sample's augmentation does not depend on which process or
    worker loads it. With one replica it is a plain seeded shuffle; call set_epoch every epoch."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        for index in super().__iter__():
            yield index, sample_seed(self.seed, self.epoch, index)


class SeededDataset(Dataset):
    """Base of the datasets: a key is an index, or (index, sample_seed) when augmenting."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def item(self, index: int):
        raise NotImplementedError

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, seed = key
            with torch.random.fork_rng(devices=[]):  # leaves the process's own RNG untouched
                torch.manual_seed(seed)
                return self.item(int(index)), int(self.labels[index])
        return self.item(int(key)), int(self.labels[key])


class FrameDataset(SeededDataset):
    """Single RGB frames: Stanford40 images, or HMDB51 frames at one study position."""

    def __init__(self, subset: SubsetArrays, augment: AugmentParams | None, position: str | None = None):
        super().__init__(subset.labels)
        if position is None:
            self.frames = subset.arrays["frames"]
            self.position_index = None
        else:
            self.frames = subset.arrays["positions"]
            self.position_index = FRAME_POSITIONS.index(position)
        self.transform = frame_transform(augment)

    def item(self, index: int) -> torch.Tensor:
        frame = self.frames[index] if self.position_index is None else self.frames[index, self.position_index]
        return self.transform(_chw(frame))


class FlowDataset(SeededDataset):
    """Stacks of 8 flow images as 24 channels. augment=True (training only): each stack is translated at
    random (`transforms.flow_augmentation`); the seed does not augment flow."""

    def __init__(self, subset: SubsetArrays, augment: bool = False):
        super().__init__(subset.labels)
        self.flow = subset.arrays["flow"]
        self.augment = flow_augmentation(self.flow.shape[-2]) if augment else None

    def item(self, index: int) -> torch.Tensor:
        images = _chw(self.flow[index])
        return flow_stack(images if self.augment is None else self.augment(images))


class TwoStreamDataset(SeededDataset):
    """(frame at `position`, flow stack) pairs of the same clip. With `augment` (training only) the frame
    gets the spatial augmentation and the flow stack its translation."""

    def __init__(self, subset: SubsetArrays, augment: AugmentParams | None, position: str):
        super().__init__(subset.labels)
        self.frames = FrameDataset(subset, augment, position)
        self.flows = FlowDataset(subset, augment=augment is not None)

    def item(self, index: int):
        return self.frames.item(index), self.flows.item(index)
