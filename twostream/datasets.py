"""Datasets over the prepared arrays (memmapped .npy) and their manifests.

Each training stage reads a few big arrays written by the data stages; samples are
copied out of the memmap one at a time, so memory stays small and workers start fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from twostream.data.splits import COLUMNS
from twostream.io import InputError, load_array, read_csv
from twostream.params import FRAME_POSITIONS, AugmentParams
from twostream.transforms import flow_stack, frame_transform


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


def _chw(array: np.ndarray) -> torch.Tensor:
    """HWC (or NHWC) uint8 from a memmap -> an owned CHW (NCHW) tensor."""
    return torch.from_numpy(np.array(array)).movedim(-1, -3)


@dataclass(frozen=True)
class Split:
    """Arrays and labels of one split of one dataset, checked for consistent lengths."""
    arrays: dict[str, np.ndarray | LazyArray]
    labels: np.ndarray
    manifest_path: Path

    def __post_init__(self) -> None:
        for name, array in self.arrays.items():
            if len(array) != len(self.labels):
                raise InputError(f"{self.manifest_path}: {len(self.labels)} rows but {name} array has "
                                 f"{len(array)}; re-run the data stages (`dvc repro`)")


def stanford40_split(images_dir: Path, split: str) -> Split:
    manifest = images_dir / f"stanford40_{split}.csv"
    return Split({"frames": LazyArray(images_dir / f"stanford40_{split}.npy")},
                 read_csv(manifest, COLUMNS)["label"].to_numpy(), manifest)


def hmdb51_split(frames_dir: Path | None, flow_dir: Path | None, split: str) -> Split:
    """HMDB51 frames at all positions (frames_dir) and/or flow images (flow_dir), same clips in the same order."""
    arrays, manifests = {}, {}
    if frames_dir is not None:
        arrays["positions"] = LazyArray(frames_dir / f"hmdb51_{split}_positions.npy")
        manifests[frames_dir / f"hmdb51_{split}.csv"] = None
    if flow_dir is not None:
        arrays["flow"] = LazyArray(flow_dir / f"hmdb51_{split}.npy")
        manifests[flow_dir / f"hmdb51_{split}.csv"] = None
    if not manifests:
        raise ValueError("hmdb51_split needs frames_dir or flow_dir")
    frames = {path: read_csv(path, COLUMNS) for path in manifests}
    (first, manifest), *others = frames.items()
    for path, other in others:
        if list(other["path"]) != list(manifest["path"]):
            raise InputError(f"{path} and {first} list different clips; re-run the data stages (`dvc repro`)")
    return Split(arrays, manifest["label"].to_numpy(), first)


class FrameDataset(Dataset):
    """Single RGB frames: Stanford40 images, or HMDB51 frames at one study position."""

    def __init__(self, split: Split, augment: AugmentParams | None, position: str | None = None):
        if position is None:
            self.frames = split.arrays["frames"]
            self.position_index = None
        else:
            self.frames = split.arrays["positions"]
            self.position_index = FRAME_POSITIONS.index(position)
        self.labels = split.labels
        self.transform = frame_transform(augment)

    def __len__(self) -> int:
        return len(self.labels)

    def frame(self, index: int) -> torch.Tensor:
        item = self.frames[index] if self.position_index is None else self.frames[index, self.position_index]
        return self.transform(_chw(item))

    def __getitem__(self, index: int):
        return self.frame(index), int(self.labels[index])


class FlowDataset(Dataset):
    """Stacks of 8 flow images as 24 channels. No augmentation (as in the seed)."""

    def __init__(self, split: Split):
        self.flow = split.arrays["flow"]
        self.labels = split.labels

    def __len__(self) -> int:
        return len(self.labels)

    def stack(self, index: int) -> torch.Tensor:
        return flow_stack(_chw(self.flow[index]))

    def __getitem__(self, index: int):
        return self.stack(index), int(self.labels[index])


class TwoStreamDataset(Dataset):
    """(frame at `position`, flow stack) pairs of the same clip."""

    def __init__(self, split: Split, augment: AugmentParams | None, position: str):
        self.frames = FrameDataset(split, augment, position)
        self.flows = FlowDataset(split)
        self.labels = split.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return (self.frames.frame(index), self.flows.stack(index)), int(self.labels[index])
