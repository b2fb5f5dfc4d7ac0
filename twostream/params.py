"""Typed, validated view of params.yaml.

params.yaml is the only place defaults live: every key must be present (no
defaults hidden here), unknown keys are rejected (a typo must not be ignored),
and every value is checked. Errors name the file and the dotted key.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

FRAME_POSITIONS = ("first", "first_middle", "middle", "middle_last", "last")
FLOW_METHODS = ("dis", "farneback", "raft_small", "raft_large")


class ParamsError(ValueError):
    """A missing, unknown or invalid key in params.yaml."""


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ParamsError(f"{key}: {message}")


def _positive(key: str, value: float) -> None:
    _check(value > 0, key, f"must be > 0, got {value!r}")


def _non_negative(key: str, value: float) -> None:
    _check(value >= 0, key, f"must be >= 0, got {value!r}")


def _fraction(key: str, value: float) -> None:
    _check(0 < value < 1, key, f"must be a fraction in (0, 1), got {value!r}")


def _probability(key: str, value: float) -> None:
    _check(0 <= value <= 1, key, f"must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class SyntheticParams:
    images_per_class: int
    videos_per_class: int
    min_frames: int
    max_frames: int
    video_width: int
    video_height: int
    min_image_side: int
    max_image_side: int

    def validate(self, key: str) -> None:
        for name in ("images_per_class", "videos_per_class", "video_width", "video_height",
                     "min_image_side"):
            _positive(f"{key}.{name}", getattr(self, name))
        _check(self.images_per_class >= 20, f"{key}.images_per_class",
               f"needs >= 20 images per class to fill stratified train/val/test, got {self.images_per_class}")
        _check(self.videos_per_class >= 10, f"{key}.videos_per_class",
               f"needs >= 10 clips per class to fill train/val/test, got {self.videos_per_class}")
        _check(self.min_frames >= 9, f"{key}.min_frames",
               f"flow needs >= 9 frames per clip, got {self.min_frames}")
        _check(self.max_frames >= self.min_frames, f"{key}.max_frames",
               f"must be >= min_frames ({self.min_frames}), got {self.max_frames}")
        _check(self.max_image_side >= self.min_image_side, f"{key}.max_image_side",
               f"must be >= min_image_side ({self.min_image_side}), got {self.max_image_side}")


@dataclass(frozen=True)
class RealParams:
    cache_dir: str
    stanford40_images_url: str
    stanford40_splits_url: str
    hmdb51_videos_url: str
    hmdb51_splits_url: str

    def validate(self, key: str) -> None:
        for name in ("cache_dir", "stanford40_images_url", "stanford40_splits_url",
                     "hmdb51_videos_url", "hmdb51_splits_url"):
            _check(bool(getattr(self, name).strip()), f"{key}.{name}", "must not be empty")


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "real"]
    synthetic: SyntheticParams
    real: RealParams


@dataclass(frozen=True)
class SplitParams:
    lists: Literal["generated", "seed"]
    test_fraction: float
    val_fraction: float
    oversample: bool
    hmdb51_split: int

    def validate(self, key: str) -> None:
        _fraction(f"{key}.test_fraction", self.test_fraction)
        _fraction(f"{key}.val_fraction", self.val_fraction)
        _check(self.hmdb51_split in (1, 2, 3), f"{key}.hmdb51_split",
               f"must be 1, 2 or 3, got {self.hmdb51_split!r}")


@dataclass(frozen=True)
class ImageParams:
    size: int

    def validate(self, key: str) -> None:
        _check(self.size >= 32, f"{key}.size", f"must be >= 32 pixels, got {self.size!r}")


@dataclass(frozen=True)
class FramesParams:
    position: Literal["first", "first_middle", "middle", "middle_last", "last"]


@dataclass(frozen=True)
class FlowParams:
    method: Literal["dis", "farneback", "raft_small", "raft_large"]
    pretrained: bool
    raft_updates: int
    batch_size: int
    device: Literal["auto", "cpu", "cuda"]

    def validate(self, key: str) -> None:
        _positive(f"{key}.raft_updates", self.raft_updates)
        _positive(f"{key}.batch_size", self.batch_size)


@dataclass(frozen=True)
class ModelParams:
    pretrained: Literal["imagenet", "none"]


@dataclass(frozen=True)
class CyclicParams:
    base_lr: float
    step_size_up: int
    step_size_down: int
    decay: float

    def validate(self, key: str) -> None:
        _positive(f"{key}.base_lr", self.base_lr)
        _positive(f"{key}.step_size_up", self.step_size_up)
        _positive(f"{key}.step_size_down", self.step_size_down)
        _check(0 < self.decay <= 1, f"{key}.decay", f"must be in (0, 1], got {self.decay!r}")


@dataclass(frozen=True)
class TrainParams:
    device: Literal["auto", "cpu", "cuda"]
    batch_size: int
    weight_decay: float
    schedule: Literal["step", "cyclic"]
    cyclic: CyclicParams
    num_workers: int
    pin_memory: bool
    amp: bool

    def validate(self, key: str) -> None:
        _positive(f"{key}.batch_size", self.batch_size)
        _non_negative(f"{key}.weight_decay", self.weight_decay)
        _non_negative(f"{key}.num_workers", self.num_workers)


@dataclass(frozen=True)
class AugmentParams:
    color_jitter: list[float]
    grayscale_p: float
    autocontrast_p: float
    sharpness_factor: float
    sharpness_p: float
    hflip_p: float
    perspective_distortion: float
    perspective_p: float
    rotation_degrees: float

    def validate(self, key: str) -> None:
        _check(len(self.color_jitter) == 4, f"{key}.color_jitter",
               f"must be [brightness, contrast, saturation, hue], got {self.color_jitter!r}")
        for value in self.color_jitter:
            _non_negative(f"{key}.color_jitter", value)
        _check(self.color_jitter[3] <= 0.5, f"{key}.color_jitter",
               f"hue must be in [0, 0.5], got {self.color_jitter[3]!r}")
        for name in ("grayscale_p", "autocontrast_p", "sharpness_p", "hflip_p", "perspective_p",
                     "perspective_distortion"):
            _probability(f"{key}.{name}", getattr(self, name))
        _non_negative(f"{key}.sharpness_factor", self.sharpness_factor)
        _non_negative(f"{key}.rotation_degrees", self.rotation_degrees)


@dataclass(frozen=True)
class StageTrainParams:
    epochs: int
    lr: float
    step_size: int
    gamma: float
    augment: bool

    def validate(self, key: str) -> None:
        _positive(f"{key}.epochs", self.epochs)
        _positive(f"{key}.lr", self.lr)
        _positive(f"{key}.step_size", self.step_size)
        _check(0 < self.gamma <= 1, f"{key}.gamma", f"must be in (0, 1], got {self.gamma!r}")


@dataclass(frozen=True)
class Params:
    seed: int
    data: DataParams
    split: SplitParams
    image: ImageParams
    frames: FramesParams
    flow: FlowParams
    model: ModelParams
    train: TrainParams
    augment: AugmentParams
    train_spatial: StageTrainParams
    finetune: StageTrainParams
    train_flow: StageTrainParams
    train_fusion: StageTrainParams

    def validate(self, key: str) -> None:
        _non_negative("seed", self.seed)
        _check(not self.train_flow.augment, "train_flow.augment",
               "must be false: flow stacks are not augmented (flips and rotations would corrupt flow directions)")
        _check(self.image.size % 32 == 0, "image.size",
               f"must be a multiple of 32: both networks downsample by 32 and the fusion joins their "
               f"feature maps, which meet only then; got {self.image.size}")
        if self.flow.method.startswith("raft"):
            _check(self.image.size >= 128, "image.size",
                   f"torchvision's RAFT needs frames of at least 128 px (flow.method: {self.flow.method}); "
                   f"got {self.image.size}; use a larger size or flow.method: dis")
        if self.train.schedule == "cyclic":
            for stage in TRAIN_STAGES:
                lr = self.stage(stage).lr
                _check(self.train.cyclic.base_lr < lr, "train.cyclic.base_lr",
                       f"must be below every stage's lr (the first cycle's peak); {stage}.lr is {lr}")

    def stage(self, name: str) -> StageTrainParams:
        """The training section of one of the four training stages."""
        if name not in TRAIN_STAGES:
            raise ParamsError(f"unknown training stage {name!r}; one of {', '.join(TRAIN_STAGES)}")
        return getattr(self, name)


TRAIN_STAGES = ("train_spatial", "finetune", "train_flow", "train_fusion")


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting int->float where harmless."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        choices = typing.get_args(tp)
        _check(value in choices, key,
               f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin in (list, types.GenericAlias) or origin is list:
        _check(isinstance(value, list), key, f"must be a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, item, key) for item in value]
    if tp is bool:
        _check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key,
               f"must be an integer, got {value!r}")
        return value
    if tp is float:
        _check(isinstance(value, (int, float)) and not isinstance(value, bool), key,
               f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        _check(isinstance(value, str), key, f"must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix or "top level"
    _check(isinstance(raw, dict), where, f"must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    dotted = (lambda name: f"{prefix}.{name}") if prefix else (lambda name: name)
    unknown = [k for k in raw if k not in names]
    _check(not unknown, dotted(str(unknown[0])) if unknown else where,
           f"unknown key (known keys here: {', '.join(names)})")
    missing = [n for n in names if n not in raw]
    _check(not missing, dotted(missing[0]) if missing else where, "missing key")
    obj = cls(**{n: _convert(hints[n], raw[n], dotted(n)) for n in names})
    if hasattr(obj, "validate"):
        obj.validate(prefix)
    return obj


def parse_params(raw: dict[str, Any]) -> Params:
    """Validate a params mapping (as loaded from YAML)."""
    return _build(Params, raw, "")


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ParamsError(f"{path}: file not found (run from the repository root or pass --params)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc


def load_params(path: str | Path = "params.yaml") -> Params:
    """Load and validate params.yaml; errors name the file and the key."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        return parse_params(raw if raw is not None else {})
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def as_dict(params: Any) -> dict[str, Any]:
    """Plain-dict view (for saving alongside models)."""
    return dataclasses.asdict(params)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], source: str = "overrides") -> dict[str, Any]:
    """A copy of `raw` with dotted keys (`train.batch_size: 64`) replaced; unknown keys are an error."""
    merged = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        node = merged
        *parents, last = str(dotted).split(".")
        for key in parents:
            if not isinstance(node, dict) or key not in node:
                raise ParamsError(f"{source}: {dotted}: no such key in params.yaml")
            node = node[key]
        if not isinstance(node, dict) or last not in node:
            raise ParamsError(f"{source}: {dotted}: no such key in params.yaml")
        node[last] = value
    return merged


def read_overrides(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of dotted keys to values (e.g. params-full.yaml)."""
    path = Path(path)
    overrides = _read_yaml(path) or {}
    if not isinstance(overrides, dict):
        raise ParamsError(f"{path}: expected a mapping of dotted keys to values")
    return overrides


def main(argv: list[str] | None = None) -> None:
    """`python -m twostream.params OVERRIDES`: validate the overrides against params.yaml and print
    them as `-S key=value` arguments for `dvc exp run`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m twostream.params OVERRIDES.yaml")
    try:
        base = _read_yaml(Path("params.yaml"))
        overrides = read_overrides(args[0])
        parse_params(apply_overrides(base, overrides, args[0]))
    except ParamsError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(" ".join(f"-S '{key}={json.dumps(value)}'" for key, value in overrides.items()))


if __name__ == "__main__":
    main()
