"""Classify videos and images with trained models: the library behind `twostream predict`.

A video goes through the pipeline's own code, as the data stages and `evaluate` run it:
`twostream.data.video.sample_video` decodes it once and picks the frame at the model's frame
position, the seed's 9 flow frames around the middle, and the frame and 9 flow frames of each of
K test clips (`video_test`'s clips); `twostream.flow.flow_images` turns each 9 frames into 8 flow
images; `twostream.transforms` normalises frames and flow stacks; the scores of K clips are
averaged as evaluate averages them (`twostream.evaluate.video_logits`, the mean softmax), and the
late fusion is evaluate's `late_fusion` (per clip, then over the clips). Everything these steps
need (image size, frame position, flow method and settings, normalisation, class names) is read
from the model file's `preprocess` record (`twostream.checkpoint.preprocess_meta`), never from
params.yaml, so the input is prepared exactly as for training.

An image (a still) goes to a Stanford 40 frame model: padded and resized as pad_resize prepares
the Stanford 40 images, then normalised.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from twostream.checkpoint import PREPROCESS_VERSION, load_model
from twostream.data.images import pad_resize, read_rgb
from twostream.data.video import sample_video
from twostream.device import resolve_device
from twostream.errors import InputError, TwostreamError
from twostream.evaluate import late_fusion, log_mean_softmax, video_logits
from twostream.flow import flow_images, flow_params_of
from twostream.data.video import FIX as DATASET_FIX
from twostream.params import FRAME_POSITIONS, MAX_TEST_CLIPS
from twostream.transforms import IMAGENET_MEAN, IMAGENET_STD, flow_stack, normalize

# Containers PyAV (FFmpeg) reads that a directory search picks up; a file named on the command line is
# tried as a video whatever its name, unless it is an image.
VIDEO_SUFFIXES = (".avi", ".mp4", ".m4v", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".ogv", ".wmv", ".flv", ".3gp")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
RETRAIN = "re-run the stage that trains it (`dvc repro -f -s <stage>`) with this version"


class PredictError(InputError):
    """A file that cannot be classified (not media, damaged, too short, the wrong kind for the model)."""


@dataclass
class Member:
    """One trained model of a predictor: the network and what its checkpoint says about its input."""
    path: Path
    model: nn.Module
    kind: str                     # spatial | temporal | twostream (ModelSpec.kind)
    source: str                   # image | video
    image_size: int
    position: str | None          # frame position (frame inputs from videos)
    flow: dict[str, Any] | None   # flow settings (flow inputs)
    classes: tuple[str, ...]

    @property
    def inputs(self) -> tuple[str, ...]:
        return {"spatial": ("frames",), "temporal": ("flow",), "twostream": ("frames", "flow")}[self.kind]


def load_member(path: Path) -> Member:
    """A trained model with its preprocessing record; a file without one (or of another version) is refused."""
    path = Path(path)
    model, checkpoint = load_model(path)
    record = checkpoint.get("preprocess")
    if not isinstance(record, dict) or record.get("version") != PREPROCESS_VERSION:
        found = "has none" if not isinstance(record, dict) else f"has version {record.get('version')}"
        raise InputError(f"{path}: the model file does not record how its inputs were prepared (this version "
                         f"needs preprocess record version {PREPROCESS_VERSION}; the file {found}); {RETRAIN}")
    norm = record.get("normalization") or {}
    if [float(x) for x in norm.get("mean", ())] != list(IMAGENET_MEAN) or \
            [float(x) for x in norm.get("std", ())] != list(IMAGENET_STD):
        raise InputError(f"{path}: the model was trained on inputs normalised with {norm}, this version "
                         f"normalises with ImageNet's mean/std; {RETRAIN}")
    kind = checkpoint["spec"]["kind"]
    member = Member(path, model.eval(), kind, record["source"], int(record["image_size"]),
                    record.get("frame_position"), record.get("flow"), tuple(checkpoint["classes"]))
    if member.source == "video" and "frames" in member.inputs and member.position not in FRAME_POSITIONS:
        raise InputError(f"{path}: the model records no valid frame position ({member.position!r}); {RETRAIN}")
    if "flow" in member.inputs:
        if member.flow is None:
            raise InputError(f"{path}: the flow model records no flow settings; {RETRAIN}")
        try:
            flow_params_of(member.flow)
        except ValueError as exc:
            raise InputError(f"{path}: this installation cannot compute the flow the model was trained on "
                             f"({exc}); {RETRAIN}") from None
    return member


@dataclass
class Prediction:
    """The class probabilities of one file: one clip (the seed's protocol; the image for a still) and, for a
    video, the mean softmax over `clips` clips."""
    path: Path
    classes: tuple[str, ...]
    clip: np.ndarray                    # (C,) probabilities
    video: np.ndarray | None = None     # (C,) probabilities over `clips` clips; None for an image
    clips: int = 0
    frames: int | None = None           # decodable frames of a video
    clip_logits: np.ndarray | None = field(default=None, repr=False)   # (C,) log-probabilities, as evaluate's
    video_logits: np.ndarray | None = field(default=None, repr=False)

    def top(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [(self.classes[i], float(probabilities[i])) for i in order]

    def record(self) -> dict[str, Any]:
        """Plain data for --json: every class's probability."""
        out: dict[str, Any] = {"path": str(self.path), "source": "image" if self.video is None else "video"}
        if self.frames is not None:
            out["frames"] = self.frames
        out["clip"] = {c: float(p) for c, p in zip(self.classes, self.clip)}
        if self.video is not None:
            out["clips"] = self.clips
            out["video"] = {c: float(p) for c, p in zip(self.classes, self.video)}
        return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.asarray(logits)).double().softmax(-1).numpy()


class Predictor:
    """One trained model, or the late fusion of a frame model and a flow model (the mean softmax)."""

    def __init__(self, members: Sequence[Member], clips: int, device: str = "cpu", flow_batch_size: int = 16):
        if not members:
            raise ValueError("a predictor needs a model")
        if not 1 <= clips <= MAX_TEST_CLIPS:
            raise InputError(f"--clips must be 1 to {MAX_TEST_CLIPS} (the bound of video_test.clips: decoding keeps "
                             f"every clip's frames), got {clips}")
        self.members, self.clips = list(members), clips
        self.device = resolve_device(device)
        self.flow_batch_size = flow_batch_size
        first = self.members[0]
        if len(self.members) > 1:  # late fusion
            described = ", ".join(f"{m.path} ({m.kind}, {m.source})" for m in self.members)
            if any(m.source != "video" for m in self.members) or \
                    sorted(m.kind for m in self.members) != ["spatial", "temporal"]:
                raise InputError(f"the late fusion averages a frame model and a flow model trained on videos; "
                                 f"got {described}")
            if len({m.classes for m in self.members}) != 1 or len({m.image_size for m in self.members}) != 1:
                raise InputError(f"the late fusion needs models of the same classes and image size; got {described}")
        self.source, self.classes, self.image_size = first.source, first.classes, first.image_size
        for member in self.members:
            member.model.to(self.device)
        flows = [m.flow for m in self.members if m.flow is not None]
        self.flow_params = flow_params_of(flows[0]) if flows else None
        positions = {m.position for m in self.members if "frames" in m.inputs}
        self.position = positions.pop() if positions else None

    @property
    def names(self) -> list[str]:
        return [str(m.path) for m in self.members]

    def predict(self, path: Path) -> Prediction:
        """The prediction for one file; PredictError/VideoError/ImageError (one line) when it cannot be made."""
        path = Path(path)
        if not path.is_file():
            raise PredictError(f"{path}: no such file")
        is_image = path.suffix.lower() in IMAGE_SUFFIXES
        if self.source == "image":
            if not is_image:
                raise PredictError(f"{path}: the model {self.names[0]} classifies still images (Stanford 40), "
                                   f"this is not one ({', '.join(IMAGE_SUFFIXES)}); use an HMDB51 model for videos")
            return self._image(path)
        if is_image:
            raise PredictError(f"{path}: an image, but the model {' + '.join(self.names)} classifies videos; "
                               f"use the Stanford 40 frame model (models/stanford40_frames.pt) for images")
        return self._video(path)

    def _image(self, path: Path) -> Prediction:
        frame = pad_resize(read_rgb(path), self.image_size)
        logits = self._run(self.members[0], frames=self._frames(frame[None]))
        log_p = log_mean_softmax(logits[:, None])[0]  # the log-softmax, in float64 as evaluate's scores
        return Prediction(path, self.classes, _softmax(log_p), clip_logits=log_p)

    def video_inputs(self, path: Path) -> tuple[dict[str, torch.Tensor], int]:
        """The model inputs of a video, 1 + K rows each: the one-clip protocol's, then the K clips'
        ("frames": (1 + K, 3, S, S), "flow": (1 + K, 24, S, S), as the models need); and its frame count."""
        sample = sample_video(path, self.image_size, self.clips)  # one decode; the sample_frames stage's choice
        inputs: dict[str, torch.Tensor] = {}
        if self.position is not None:  # the frame at the model's position, then the K clips' centre frames
            one = sample.positions[FRAME_POSITIONS.index(self.position)]
            inputs["frames"] = self._frames(np.concatenate([one[None], sample.clip_frames]))
        if self.flow_params is not None:  # the seed's 9 frames around the middle, then each clip's 9
            stacks = np.concatenate([sample.flow_frames[None], sample.clip_flow_frames])
            images = flow_images(stacks, self.flow_params, progress=False, device=str(self.device),
                                 batch_size=self.flow_batch_size)
            inputs["flow"] = torch.stack([flow_stack(torch.from_numpy(v).permute(0, 3, 1, 2)) for v in images])
        return inputs, sample.n

    def _video(self, path: Path) -> Prediction:
        inputs, n = self.video_inputs(path)
        logits = [self._run(m, **{name: inputs[name] for name in m.inputs}) for m in self.members]
        if len(logits) == 1:
            clip, video = log_mean_softmax(logits[0][:1, None])[0], video_logits(logits[0][1:], self.clips)[0]
        else:  # evaluate's late fusion: per clip, then over the video's clips
            clip = late_fusion(*(x[:1] for x in logits))[0]
            video = video_logits(late_fusion(*(x[1:] for x in logits)), self.clips)[0]
        return Prediction(path, self.classes, _softmax(clip), _softmax(video), self.clips, n,
                          clip_logits=clip, video_logits=video)

    @staticmethod
    def _frames(frames: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 RGB -> (N, 3, S, S) float, normalised as the datasets do."""
        return normalize()(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))

    def _run(self, member: Member, **inputs: torch.Tensor) -> np.ndarray:
        args = [inputs[name].to(self.device) for name in member.inputs]
        with torch.inference_mode():
            return member.model(*args).float().cpu().numpy()


def media_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The files to classify: each PATH that is a file, and every video or image under a directory
    (recursively, sorted). A PATH that does not exist is yielded as is (predict reports it)."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES + IMAGE_SUFFIXES)
        else:
            yield path


def predict_files(predictor: Predictor, paths: Iterable[Path]) -> Iterator[tuple[Path, Prediction | None, str | None]]:
    """(path, prediction, None) or (path, None, one-line error) for each file, in order: a file that fails
    does not stop the others."""
    for path in paths:
        try:
            yield path, predictor.predict(path), None
        except TwostreamError as exc:  # the readers' advice is for the pipeline's datasets: not here
            yield path, None, str(exc).removesuffix(f"; {DATASET_FIX}")
