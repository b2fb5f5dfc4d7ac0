"""One training loop for all four models, and one training run of a stage.

Adam + cross-entropy, a learning-rate schedule stepped after every batch (the seed's step
schedule, which changes the lr between epochs, or its cyclical schedule, which moves it
linearly within epochs), validation without augmentation after every epoch, and
the best epoch kept for real: an epoch is best when validation accuracy rises *and*
validation loss falls relative to the best so far, and at the end the model holds a
copy of that epoch's weights (the seed's code tested its last epoch instead).
Accuracy and loss are per sample, not a mean of per-batch means.

`train_stage` is what every training stage calls: loaders, the loop, per-epoch curves
through DVCLive (TSVs only: the train/val figures of the best epoch are reported once, by
`evaluate`, in metrics/<model>.json), and the checkpoint. Nothing is written before
training has succeeded, and everything is written atomically.

Under torchrun (runtime.yaml `torchrun_processes` > 1, see `twostream.launch`) the same code runs data-parallel
(`twostream.distributed`): DistributedDataParallel, each process loading `batch_size / torchrun_processes`
samples of every global batch of `train.batch_size`, train figures summed over the processes,
validation logits gathered in dataset order (every sample once), so every process takes the same
best-epoch decision; rank 0 alone writes the checkpoint and the curves.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from twostream import distributed
from twostream.checkpoint import save_checkpoint
from twostream.datasets import SeededDataset, SeededSampler
from twostream.errors import ParamsError, TrainingError
from twostream.io import atomic_dir
from twostream.model_table import BY_STAGE
from twostream.params import (CyclicParams, Params, RuntimeParams, StageTrainParams, StepParams, TrainParams,
                              TwoStreamTrainParams, as_dict)

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed every RNG the pipeline touches; CPU runs with the same params give the same weights.

    cuDNN: no autotuning and deterministic algorithms, so a GPU run with the same params gives
    the same weights too (at some cost in speed)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, runtime: RuntimeParams, shuffle: bool, seed: int,
                device: torch.device | None = None) -> DataLoader:
    """A DataLoader over `dataset`. shuffle=True (training): a SeededSampler, so the order and every
    sample's augmentation depend on `seed` and the epoch only (call `loader.sampler.set_epoch`), not
    on the worker count. shuffle=False: the dataset's order, loaded in this process on the CPU.

    `batch_size` is the global batch: with W data-parallel processes each loads its share
    (batch_size / W) of every step's batch (W consecutive samples of the permutation go to W
    processes), and with shuffle=False its DistributedSampler shard (rows rank, rank + W, ...,
    padded with the first rows to equal lengths; `distributed.gather_in_order` undoes it)."""
    world, rank = distributed.world_size(), distributed.rank()
    if batch_size % world:
        raise ValueError(f"batch size {batch_size} is not divisible by the {world} processes")
    local_batch = batch_size // world
    sampler = None
    if shuffle:  # torch's DistributedSampler order; with per-sample seeds for the project's datasets
        kind = SeededSampler if isinstance(dataset, SeededDataset) else DistributedSampler
        sampler = kind(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
    elif world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
    # A last training batch of one sample breaks BatchNorm on 1x1 feature maps: drop it (every
    # process has as many samples, so all drop theirs or none does).
    drop_last = shuffle and len(sampler) % local_batch == 1
    # The loader's own generator: each iterator draws its workers' base seed from it, never from the
    # process's RNG. Otherwise the model's RNG stream (dropout) would depend on the worker count: one
    # draw per epoch without workers, one in all with persistent workers.
    generator = torch.Generator().manual_seed(seed)
    # shuffle=False (validation, test) on the CPU: the samples load in this process, whatever
    # `loader_workers` says. There is no augmentation to hand to a worker, and a worker per loader costs
    # more than it saves (docs/performance.md); the metrics are the same. On CUDA workers overlap
    # loading with the GPU's work.
    workers = 0 if not shuffle and (device is None or device.type == "cpu") else runtime.loader_workers
    return DataLoader(dataset, batch_size=local_batch, sampler=sampler, num_workers=workers,
                      drop_last=drop_last,
                      pin_memory=runtime.pin_memory and device is not None and device.type == "cuda",
                      worker_init_fn=_seed_worker, persistent_workers=workers > 0,
                      generator=generator)


def cyclic_lr(position: float, base_lr: float, max_lr: float, cyclic: CyclicParams) -> float:
    """The seed's cyclical schedule at `position` epochs into training (fractions within an epoch):
    linear from base to the cycle's max in `step_size_up` epochs, back to base in `step_size_down`;
    each cycle's max is `decay` times the previous one (torch's CyclicLR would scale the amplitude
    above base instead)."""
    length = cyclic.step_size_up + cyclic.step_size_down
    cycle = math.floor(position / length)
    offset = position - cycle * length
    peak = max_lr * cyclic.decay ** cycle
    if offset <= cyclic.step_size_up:
        return base_lr + (peak - base_lr) * offset / cyclic.step_size_up
    return peak - (peak - base_lr) * (offset - cyclic.step_size_up) / cyclic.step_size_down


def step_lr_factor(epoch: int, step: StepParams) -> float:
    """The step schedule's lr factor in `epoch` (from 0): StepLR(step.step_size, step.gamma) after
    `step.warmup_epochs` W epochs of linear warm-up, epoch e of the warm-up (1..W) at e / (W + 1)."""
    warmup = step.warmup_epochs
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    return step.gamma ** ((epoch - warmup) // step.step_size)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float = 0.0,
                   fusion_lr: float | None = None) -> torch.optim.Adam:
    """The training stages' optimizer: Adam, fused (one kernel updates every parameter; torch >= 2.4,
    CPU and CUDA). `fit` and the training benchmark both build it here.

    With `fusion_lr`, `model` is a two-stream model: its fusion layers (`model.fusion`, new) form a second
    parameter group at `fusion_lr`, the rest (the two trained streams) train at `lr`. The scheduler
    scales every group by the same factor."""
    if fusion_lr is None:
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay, fused=True)
    fusion = getattr(model, "fusion", None)
    if not isinstance(fusion, nn.Module):
        raise TypeError(f"fusion_lr needs a two-stream model (with a `fusion` module), got {type(model).__name__}")
    new = {id(p) for p in fusion.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in new]},
              {"params": list(fusion.parameters()), "lr": fusion_lr}]
    return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, fused=True)


def make_scheduler(optimizer: torch.optim.Optimizer, stage: StageTrainParams, train: TrainParams,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The stage's lr schedule, to be stepped after every batch (`steps_per_epoch` batches an epoch).

    `step`: constant within an epoch, `step_lr_factor` of the stage's lr. `cyclic`: the seed's schedule,
    `cyclic_lr` after every batch, from `train.cyclic.base_lr` to the stage's lr (so the first epoch
    already climbs from the base, rather than spending the whole epoch there). Every parameter group
    moves by the same factor of its own lr (the fusion layers' group peaks at `fusion_lr`)."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if train.schedule == "step":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda it: step_lr_factor(it // steps_per_epoch, stage.step))
    # train.cyclic.base_lr < stage.lr is checked with params.yaml (Params.validate)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: cyclic_lr(it / steps_per_epoch, train.cyclic.base_lr, stage.lr, train.cyclic) / stage.lr)


class BestEpoch:
    """Tracks the best epoch (val accuracy up *and* val loss down) and a copy of its weights."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.accuracy = -math.inf
        self.loss = math.inf
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, accuracy: float, loss: float, model: nn.Module) -> bool:
        if not (accuracy > self.accuracy and loss < self.loss):
            return False
        self.epoch, self.accuracy, self.loss = epoch, accuracy, loss
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True


def _to(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Inputs on `device`; images (4-d) in NHWC memory order when `channels_last`."""
    if isinstance(batch, (tuple, list)):
        return tuple(_to(t, device, channels_last) for t in batch)
    if channels_last and batch.dim() == 4:
        return batch.to(device, memory_format=torch.channels_last, non_blocking=True)
    return batch.to(device, non_blocking=True)


def _forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def _autocast(device: torch.device, amp: bool):
    """bf16 autocast when `train.amp` is on, on CUDA and on the CPU alike: the param means the same
    arithmetic on every device (and the CPU tests exercise the GPU's path)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def place_model(model: nn.Module, device: torch.device, channels_last: bool = False) -> nn.Module:
    """`model` on `device`, its 4-d weights in NHWC memory order when `channels_last` (runtime.yaml:
    faster convolutions on recent GPUs; the same results up to rounding)."""
    if channels_last:
        return model.to(device, memory_format=torch.channels_last)
    return model.to(device)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                amp: bool = False, desc: str = "train", progress: bool = True, channels_last: bool = False,
                scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> tuple[float, float, float]:
    """One pass over `loader` with updates, `scheduler` stepped after each; per-sample mean loss and
    accuracy (over all processes), and the mean lr of the epoch's batches (the first parameter group's)."""
    model.train()
    loss_sum, correct, count, lr_sum, batches = 0.0, 0, 0, 0.0, 0
    for inputs, labels in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        inputs, labels = _to(inputs, device, channels_last), labels.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = _forward(model, inputs)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr_sum, batches = lr_sum + optimizer.param_groups[0]["lr"], batches + 1
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    if distributed.world_size() > 1:
        loss_sum, correct, count = distributed.sum_over_processes([loss_sum, correct, count])
    return loss_sum / count, correct / count, lr_sum / max(batches, 1)


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
            desc: str = "eval", progress: bool = True, channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, C) and labels (N,) of every sample, in loader order, in eval mode."""
    model.eval()
    all_logits, all_labels = [], []
    for inputs, labels in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress):
        with _autocast(device, amp):
            logits = _forward(model, _to(inputs, device, channels_last))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits).numpy(), torch.cat(all_labels).numpy()


def loss_and_accuracy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Per-sample mean cross-entropy and accuracy."""
    loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()).item()
    return loss, float(np.mean(logits.argmax(1) == labels))


def validate(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
             channels_last: bool = False) -> tuple[float, float]:
    """Per-sample loss and accuracy on `loader` (no augmentation, no updates). Under several
    processes each predicts its shard and all compute the figures from every sample, once each."""
    logits, labels = predict(model, loader, device, amp, desc="val", progress=distributed.is_main(),
                             channels_last=channels_last)
    if distributed.world_size() > 1:
        n = len(loader.dataset)
        logits, labels = distributed.gather_in_order(logits, n), distributed.gather_in_order(labels, n)
    return loss_and_accuracy(logits, labels)


@dataclass
class EpochRecord:
    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    best: bool


@dataclass
class FitResult:
    best_epoch: int
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def best(self) -> EpochRecord:
        return self.history[self.best_epoch - 1]


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader, stage: StageTrainParams,
        train: TrainParams, device: torch.device, live: Any = None,
        evaluate_fn: Callable[[nn.Module, DataLoader, torch.device, bool], tuple[float, float]] | None = None,
        progress: bool = True, channels_last: bool = False) -> FitResult:
    """Train for `stage.epochs`, then restore the best epoch's weights into `model`.

    `live` is a dvclive.Live (or None): train/val loss and accuracy and the learning
    rate are logged per epoch. `evaluate_fn` (default `validate`) measures the validation set.
    `channels_last` (runtime.yaml) keeps the model and its image inputs in NHWC memory order.
    Under several processes the model trains wrapped in DistributedDataParallel, is validated
    unwrapped with rank 0's BatchNorm statistics, and every process takes rank 0's validation
    figures (the same, computed from the same gathered logits).
    """
    place_model(model, device, channels_last)
    net = distributed.data_parallel(model, device)
    evaluate_fn = evaluate_fn or functools.partial(validate, channels_last=channels_last)
    fusion_lr = stage.fusion_lr if isinstance(stage, TwoStreamTrainParams) else None
    optimizer = make_optimizer(model, stage.lr, train.weight_decay, fusion_lr)
    scheduler = make_scheduler(optimizer, stage, train, len(train_loader))
    best = BestEpoch()
    history: list[EpochRecord] = []
    for epoch in range(1, stage.epochs + 1):
        if isinstance(train_loader.sampler, DistributedSampler):
            train_loader.sampler.set_epoch(epoch)
        train_loss, train_acc, lr = train_epoch(net, train_loader, optimizer, device, train.amp,
                                                desc=f"epoch {epoch}/{stage.epochs}", progress=progress,
                                                channels_last=channels_last, scheduler=scheduler)
        distributed.sync_buffers(model)
        val_loss, val_acc = evaluate_fn(model, val_loader, device, train.amp)
        if distributed.world_size() > 1:
            val_loss, val_acc = distributed.from_main([val_loss, val_acc])
        improved = best.update(epoch, val_acc, val_loss, model)
        history.append(EpochRecord(epoch, lr, train_loss, train_acc, val_loss, val_acc, improved))
        log.info("epoch %d/%d lr %.2e train loss %.4f acc %.3f | val loss %.4f acc %.3f%s", epoch, stage.epochs,
                 lr, train_loss, train_acc, val_loss, val_acc, "  *best*" if improved else "")
        if live is not None:
            for name, value in (("train/loss", train_loss), ("train/accuracy", train_acc),
                                ("val/loss", val_loss), ("val/accuracy", val_acc), ("lr", lr)):
                live.log_metric(name, value)
            live.next_step()
    if best.state is None or best.epoch is None:  # only when validation loss or accuracy is NaN throughout
        raise TrainingError(f"no epoch had a finite validation loss (last: {history[-1].val_loss}); "
                            f"training diverged: lower the stage's lr in params.yaml")
    model.load_state_dict(best.state)
    log.info("restored best epoch %d (val acc %.3f, loss %.4f)", best.epoch, best.accuracy, best.loss)
    return FitResult(best.epoch, history)


def stage_params(params: Params, stage: str, **extra: Any) -> dict[str, Any]:
    """The params a training stage tracks in dvc.yaml, as recorded in its checkpoint."""
    recorded = {"seed": params.seed, "model": as_dict(params.model), "train": as_dict(params.train),
                stage: as_dict(params.stage(stage)), **extra}
    # the augment section is the frames' augmentation (the flow stacks' translation has no params)
    if params.stage(stage).augment and "frames" in BY_STAGE[stage].inputs:
        recorded["augment"] = as_dict(params.augment)
    return recorded


def check_batch_split(batch_size: int, processes: int) -> None:
    """The global batch must split evenly between the data-parallel processes."""
    if batch_size % processes:
        raise ParamsError(f"train.batch_size ({batch_size}) is not divisible by the {processes} training processes "
                          f"(runtime.yaml torchrun_processes, or torchrun's processes in all): each process loads "
                          f"train.batch_size / torchrun_processes samples of every batch; change torchrun_processes "
                          f"or train.batch_size")


def train_stage(stage: str, model: nn.Module, train_set: Dataset, val_set: Dataset, params: Params,
                runtime: RuntimeParams, out: Path, curves: Path | None, meta: dict[str, Any]) -> FitResult:
    """Train `model` with the stage's params, then write the best epoch's checkpoint to `out` and
    the per-epoch curves (DVCLive TSVs: train/ and val/ accuracy and loss, lr) to `curves`.

    Under torchrun every process calls this; rank 0 alone writes, the others wait until it is done."""
    from dvclive import Live

    check_batch_split(params.train.batch_size, distributed.launched_world_size())
    with distributed.process_group(runtime.device) as device:
        distributed.seed_process(params.seed)
        main = distributed.is_main()
        train_loader = make_loader(train_set, params.train.batch_size, runtime, shuffle=True, seed=params.seed,
                                   device=device)
        val_loader = make_loader(val_set, params.train.batch_size, runtime, shuffle=False, seed=params.seed,
                                 device=device)
        log.info("%s: %d parameters, %d train / %d val samples, device %s, %d process(es)", stage,
                 meta["num_params"], len(train_set), len(val_set), device, distributed.world_size())
        with (tempfile.TemporaryDirectory(prefix=f"twostream-{stage}-") if main
              else contextlib.nullcontext()) as scratch:
            live_dir = Path(scratch) / "live" if main else None
            with (Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None) if main
                  else contextlib.nullcontext()) as live:
                result = fit(model, train_loader, val_loader, params.stage(stage), params.train, device, live=live,
                             progress=runtime.progress and main,
                             channels_last=runtime.channels_last)
            if main:
                save_checkpoint(out, model, meta, result.best_epoch, [asdict(r) for r in result.history])
                if curves is not None:  # DVCLive's own summary (metrics.json) is not kept: evaluate reports it
                    with atomic_dir(curves) as tmp:
                        shutil.copytree(live_dir / "plots" / "metrics", tmp, dirs_exist_ok=True)
        distributed.barrier()  # the other processes end once the outputs are in place
    best = result.best
    log.info("%s: best epoch %d/%d, val accuracy %.3f -> %s", stage, result.best_epoch, len(result.history),
             best.val_accuracy, out)
    return result
