"""Typed, validated views of params.yaml (what is computed) and runtime.yaml (how it runs).

params.yaml is the only place result-affecting defaults live: every key must be present (no
defaults hidden here), unknown keys are rejected (a typo must not be ignored), and every value
is checked, including the cross-field limits that later stages would otherwise hit. Errors name
the file and the dotted key.

runtime.yaml holds the settings that change speed or location, never a result (device, worker
processes, pinned memory, number of training processes, progress bars, where downloads come from
and are cached). No
DVC stage tracks it, so changing it never re-runs a stage.

Both files are read as DVC reads params.yaml: YAML 1.2 through ruamel.yaml's safe loader, so
`1e-3`, `1E-3` and `.5` are floats here exactly as they are to DVC.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from twostream.errors import ParamsError

# The seed's protocol: five frame positions of the study; 9 frames around the middle give a
# stack of 8 consecutive-pair flow images.
FRAME_POSITIONS = ("first", "first_middle", "middle", "middle_last", "last")
FLOW_FRAMES = 9
FLOW_PAIRS = FLOW_FRAMES - 1
FLOW_METHODS = ("dis", "farneback", "raft_small", "raft_large")
RAFT_METHODS = ("raft_small", "raft_large")
TRAIN_STAGES = ("stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream")
SUBSETS = ("train", "val", "test")

# torchvision's RAFT downsamples by 8 and builds a 4-level correlation pyramid whose coarsest
# level needs >= 2 cells: feature maps of >= 16 cells, so frames of >= 128 px.
RAFT_MIN_SIZE = 128
# Both networks downsample by 32 and the fusion joins their feature maps, which meet only then.
SIZE_MULTIPLE = 32

# Upper bounds on the params that size the work, so that a typo (100000 for 224) fails at once instead
# of after hours or with an out-of-memory kill. Each allows the full setting with room to spare.
MAX_SEED = 2**32 - 1          # numpy's and scikit-learn's seeds (RandomState) are 32-bit
MAX_IMAGE_SIZE = 512          # the arrays grow with its square: the full setting's test flow stacks are
                              # 360 videos x 10 clips x 8 x 224 x 224 x 3 bytes = 4.3 GB at 224, 22 GB at 512
MAX_RAFT_UPDATES = 32         # RAFT's paper evaluates with 32; each update is a full pass of the update block
MAX_TEST_CLIPS = 30           # three times the full setting's 10; arrays and flow time grow linearly
MAX_BATCH_SIZE = 1024         # train.batch_size: over a third of the full setting's Stanford40 train set
MAX_FLOW_BATCH_SIZE = 256     # runtime flow_batch_size: RAFT frame pairs per forward pass
MAX_TORCHRUN_PROCESSES = 64                # runtime torchrun_processes: training processes on one machine (one GPU each on CUDA)
MAX_WORKERS = 64              # runtime loader_workers: DataLoader workers per process
MAX_PREP_PROCESSES = 256      # runtime prep_processes: data-preparation worker processes


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ParamsError(f"{key}: {message}")


def _positive(key: str, value: float) -> None:
    _check(value > 0, key, f"must be > 0, got {value!r}")


def _non_negative(key: str, value: float) -> None:
    _check(value >= 0, key, f"must be >= 0, got {value!r}")


def _at_most(key: str, value: float, bound: int, why: str) -> None:
    _check(value <= bound, key, f"must be <= {bound} ({why}), got {value!r}")


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
        _check(self.min_frames >= 9, f"{key}.min_frames",
               f"flow needs >= 9 frames per clip, got {self.min_frames}")
        _check(self.max_frames >= self.min_frames, f"{key}.max_frames",
               f"must be >= min_frames ({self.min_frames}), got {self.max_frames}")
        _check(self.max_image_side >= self.min_image_side, f"{key}.max_image_side",
               f"must be >= min_image_side ({self.min_image_side}), got {self.max_image_side}")


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "real"]
    synthetic: SyntheticParams


@dataclass(frozen=True)
class SplitParams:
    lists: Literal["generated", "seed"]
    test_fraction: float
    val_fraction: float
    oversample: bool
    hmdb51_fold: int
    val_groups: Literal["source", "clip"]

    def validate(self, key: str) -> None:
        _fraction(f"{key}.test_fraction", self.test_fraction)
        _fraction(f"{key}.val_fraction", self.val_fraction)
        if self.val_groups == "source":
            _check(self.val_fraction <= 0.5, f"{key}.val_fraction",
                   f"must be <= 0.5 with {key}.val_groups: source (val is one of round(1 / val_fraction) >= 2 "
                   f"folds of source videos), got {self.val_fraction!r}")
        _check(self.hmdb51_fold in (1, 2, 3), f"{key}.hmdb51_fold",
               f"must be 1, 2 or 3 (HMDB51's three official train/test folds), got {self.hmdb51_fold!r}")


@dataclass(frozen=True)
class ImageParams:
    size: int

    def validate(self, key: str) -> None:
        _check(self.size >= SIZE_MULTIPLE and self.size % SIZE_MULTIPLE == 0, f"{key}.size",
               f"must be a multiple of {SIZE_MULTIPLE} (>= {SIZE_MULTIPLE}): both networks downsample by "
               f"{SIZE_MULTIPLE} and the fusion joins their feature maps, which meet only then; got {self.size!r}")
        _at_most(f"{key}.size", self.size, MAX_IMAGE_SIZE,
                 "the prepared arrays grow with its square; the seed uses 224")


@dataclass(frozen=True)
class FramesParams:
    position: Literal[FRAME_POSITIONS]  # type: ignore[valid-type]


@dataclass(frozen=True)
class VideoTestParams:
    clips: int

    def validate(self, key: str) -> None:
        _positive(f"{key}.clips", self.clips)
        _at_most(f"{key}.clips", self.clips, MAX_TEST_CLIPS, "the test arrays and flow time grow with it; the seed's "
                 "full setting uses 10")


@dataclass(frozen=True)
class FlowParams:
    method: Literal[FLOW_METHODS]  # type: ignore[valid-type]
    raft_updates: int
    pretrained: bool = True  # RAFT's torchvision weights; false (random weights) only in tests, not in params.yaml

    def validate(self, key: str) -> None:
        _positive(f"{key}.raft_updates", self.raft_updates)
        _at_most(f"{key}.raft_updates", self.raft_updates, MAX_RAFT_UPDATES,
                 "flow time grows with it; the seed uses 12")


@dataclass(frozen=True)
class ModelParams:
    pretrained: Literal["imagenet", "none"]


@dataclass(frozen=True)
class CyclicParams:
    base_lr: float
    step_size_up: float   # epochs (fractions allowed)
    step_size_down: float
    decay: float

    def validate(self, key: str) -> None:
        _positive(f"{key}.base_lr", self.base_lr)
        _positive(f"{key}.step_size_up", self.step_size_up)
        _positive(f"{key}.step_size_down", self.step_size_down)
        _check(0 < self.decay <= 1, f"{key}.decay", f"must be in (0, 1], got {self.decay!r}")


@dataclass(frozen=True)
class TrainParams:
    batch_size: int
    weight_decay: float
    schedule: Literal["step", "cyclic"]
    cyclic: CyclicParams
    amp: bool

    def validate(self, key: str) -> None:
        _positive(f"{key}.batch_size", self.batch_size)
        _at_most(f"{key}.batch_size", self.batch_size, MAX_BATCH_SIZE, "a batch must fit in memory; the seed uses 32")
        _non_negative(f"{key}.weight_decay", self.weight_decay)


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
class StepParams:
    """The step schedule of one training stage (used when train.schedule is step)."""
    warmup_epochs: int
    step_size: int
    gamma: float

    def validate(self, key: str) -> None:
        _non_negative(f"{key}.warmup_epochs", self.warmup_epochs)
        _positive(f"{key}.step_size", self.step_size)
        _check(0 < self.gamma <= 1, f"{key}.gamma", f"must be in (0, 1], got {self.gamma!r}")


@dataclass(frozen=True)
class StageTrainParams:
    epochs: int
    lr: float
    augment: bool
    step: StepParams

    def validate(self, key: str) -> None:
        _positive(f"{key}.epochs", self.epochs)
        _check(self.step.warmup_epochs < self.epochs, f"{key}.step.warmup_epochs",
               f"must be below {key}.epochs ({self.epochs}), got {self.step.warmup_epochs}")
        _positive(f"{key}.lr", self.lr)


@dataclass(frozen=True)
class TwoStreamTrainParams(StageTrainParams):
    """The fusion stage's training section: `lr` is the two trained streams', `fusion_lr` the new fusion
    layers' (the 1x1 conv, its BatchNorm and the fc, randomly initialised); the schedule scales both."""
    fusion_lr: float

    def validate(self, key: str) -> None:
        super().validate(key)
        _positive(f"{key}.fusion_lr", self.fusion_lr)


@dataclass(frozen=True)
class Params:
    seed: int
    data: DataParams
    split: SplitParams
    image: ImageParams
    frames: FramesParams
    video_test: VideoTestParams
    flow: FlowParams
    model: ModelParams
    train: TrainParams
    augment: AugmentParams
    stanford40_frames: StageTrainParams
    hmdb51_frames: StageTrainParams
    hmdb51_flow: StageTrainParams
    hmdb51_twostream: TwoStreamTrainParams

    def validate(self, key: str) -> None:
        _non_negative("seed", self.seed)
        _at_most("seed", self.seed, MAX_SEED, "numpy's and scikit-learn's random states are 32-bit")
        if self.flow.method in RAFT_METHODS:
            _check(self.image.size >= RAFT_MIN_SIZE, "image.size",
                   f"torchvision's RAFT needs frames of at least {RAFT_MIN_SIZE} px (flow.method: "
                   f"{self.flow.method}); got {self.image.size}; use a larger size or flow.method: dis")
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


@dataclass(frozen=True)
class DownloadParams:
    """Where the real datasets' archives come from and where they are cached (runtime.yaml `downloads`).

    Locations only: each archive keeps its official file name and is verified against the
    known size/checksum, so a mirror or a local copy gives the same data."""
    cache_dir: str
    stanford40_images_url: str
    stanford40_splits_url: str
    hmdb51_videos_url: str
    hmdb51_splits_url: str

    def validate(self, key: str) -> None:
        for field in dataclasses.fields(self):
            _check(bool(getattr(self, field.name).strip()), f"{key}.{field.name}", "must not be empty")


@dataclass(frozen=True)
class RuntimeParams:
    """runtime.yaml: how and where to run; nothing here changes a result."""
    device: Literal["auto", "cpu", "cuda"]
    torchrun_processes: int
    loader_workers: int
    pin_memory: bool
    channels_last: bool
    flow_batch_size: int
    prep_processes: int
    progress: bool
    downloads: DownloadParams

    def validate(self, key: str) -> None:
        _positive("torchrun_processes", self.torchrun_processes)
        _at_most("torchrun_processes", self.torchrun_processes, MAX_TORCHRUN_PROCESSES, "training processes on this machine")
        _non_negative("loader_workers", self.loader_workers)
        _at_most("loader_workers", self.loader_workers, MAX_WORKERS, "DataLoader workers per process")
        _positive("flow_batch_size", self.flow_batch_size)
        _at_most("flow_batch_size", self.flow_batch_size, MAX_FLOW_BATCH_SIZE, "RAFT frame pairs per pass must fit "
                 "in memory")
        _non_negative("prep_processes", self.prep_processes)
        _at_most("prep_processes", self.prep_processes, MAX_PREP_PROCESSES, "data-preparation worker processes")

    def cpu_processes(self) -> int:
        """Worker processes for CPU-bound data work: `processes`, or every core this process may use."""
        return self.prep_processes or usable_cpus()


def usable_cpus() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting int->float where harmless."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is Literal:
        choices = typing.get_args(tp)
        _check(value in choices, key, f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin is list:
        _check(isinstance(value, list), key, f"must be a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, item, key) for item in value]
    if tp is bool:
        _check(isinstance(value, bool), key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        _check(isinstance(value, int) and not isinstance(value, bool), key, f"must be an integer, got {value!r}")
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
    optional = {f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
    missing = [n for n in names if n not in raw and n not in optional]
    _check(not missing, dotted(missing[0]) if missing else where, "missing key")
    obj = cls(**{n: _convert(hints[n], raw[n], dotted(n)) for n in names if n in raw})
    if hasattr(obj, "validate"):
        obj.validate(prefix)
    return obj


def parse_params(raw: dict[str, Any]) -> Params:
    """Validate a params mapping (as loaded from YAML)."""
    return _build(Params, raw, "")


def read_yaml(path: str | Path) -> Any:
    """A YAML file read as DVC reads params.yaml (YAML 1.2, ruamel.yaml's safe loader)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: file not found (run from the repository root or pass --params)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ParamsError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file as "
                          f"UTF-8") from None
    try:
        return YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ParamsError(f"{path}: not valid YAML: {detail}") from None


def _load(path: str | Path, cls: type) -> Any:
    raw = read_yaml(path)
    try:
        return _build(cls, raw if raw is not None else {}, "")
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Load and validate params.yaml; errors name the file and the key."""
    return _load(path, Params)


def load_runtime(path: str | Path = "runtime.yaml") -> RuntimeParams:
    """Load and validate runtime.yaml; errors name the file and the key."""
    return _load(path, RuntimeParams)


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
    overrides = read_yaml(path) or {}
    if not isinstance(overrides, dict):
        raise ParamsError(f"{path}: expected a mapping of dotted keys to values")
    return overrides


def overrides_as_set_params(overrides: dict[str, Any]) -> str:
    """`-S 'key=value' ...` arguments for `dvc exp run` (values as JSON, which DVC parses as YAML)."""
    return " ".join(f"-S '{key}={json.dumps(value)}'" for key, value in overrides.items())


def main(argv: list[str] | None = None) -> None:
    """`python -m twostream.params OVERRIDES...`: validate override files (applied in order) against
    params.yaml and print them as `-S key=value` arguments for `dvc exp run`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m twostream.params OVERRIDES.yaml [MORE.yaml ...]")
    try:
        merged_overrides: dict[str, Any] = {}
        raw = read_yaml("params.yaml")
        for path in args:
            overrides = read_overrides(path)
            raw = apply_overrides(raw, overrides, path)
            merged_overrides.update(overrides)
        parse_params(raw)
    except ParamsError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(overrides_as_set_params(merged_overrides))


if __name__ == "__main__":
    main()
