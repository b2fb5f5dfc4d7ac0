"""One training loop for all four models.

Adam + cross-entropy, a learning-rate schedule stepped once per epoch (StepLR or the
seed's cyclical schedule), validation without augmentation after every epoch, and
the best epoch kept for real: an epoch is best when validation accuracy rises *and*
validation loss falls relative to the best so far, and at the end the model holds a
copy of that epoch's weights (the seed's code tested its last epoch instead).
Accuracy and loss are per sample, not a mean of per-batch means.
"""
from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from twostream.io import InputError, atomic_path
from twostream.params import CyclicParams, ParamsError, StageTrainParams, TrainParams

log = logging.getLogger(__name__)


class TrainingError(RuntimeError):
    """Training that produced no usable model (e.g. a loss that is NaN in every epoch)."""


def seed_everything(seed: int) -> None:
    """Seed every RNG the pipeline touches; CPU runs with the same params give the same weights."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, train: TrainParams, shuffle: bool, seed: int,
                device: torch.device | None = None) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    # A last training batch of one sample breaks BatchNorm on 1x1 feature maps: drop it.
    drop_last = shuffle and len(dataset) % train.batch_size == 1
    return DataLoader(dataset, batch_size=train.batch_size, shuffle=shuffle, num_workers=train.num_workers,
                      drop_last=drop_last,
                      pin_memory=train.pin_memory and device is not None and device.type == "cuda",
                      worker_init_fn=_seed_worker, generator=generator,
                      persistent_workers=train.num_workers > 0)


def cyclic_lr(epoch: int, base_lr: float, max_lr: float, cyclic: CyclicParams) -> float:
    """The seed's cyclical schedule: linear from base to the cycle's max in `step_size_up`
    epochs, back to base in `step_size_down`; each cycle's max is `decay` times the previous."""
    length = cyclic.step_size_up + cyclic.step_size_down
    cycle, position = divmod(epoch, length)
    peak = max_lr * cyclic.decay ** cycle
    if position <= cyclic.step_size_up:
        return base_lr + (peak - base_lr) * position / cyclic.step_size_up
    return peak - (peak - base_lr) * (position - cyclic.step_size_up) / cyclic.step_size_down


def make_scheduler(optimizer: torch.optim.Optimizer, stage: StageTrainParams,
                   train: TrainParams) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch schedule: StepLR(step_size, gamma), or the cyclical one with the stage's lr as first max."""
    if train.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=stage.step_size, gamma=stage.gamma)
    if train.cyclic.base_lr >= stage.lr:
        raise ParamsError(f"train.cyclic.base_lr: must be below the stage's lr ({stage.lr}), "
                          f"got {train.cyclic.base_lr}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda epoch: cyclic_lr(epoch, train.cyclic.base_lr, stage.lr, train.cyclic) / stage.lr)


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


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, (tuple, list)):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    return batch.to(device, non_blocking=True)


def _forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer, device: torch.device,
                amp: bool = False, desc: str = "train") -> tuple[float, float]:
    """One pass over `loader` with updates; per-sample mean loss and accuracy."""
    model.train()
    loss_sum, correct, count = 0.0, 0, 0
    for inputs, labels in tqdm(loader, desc=desc, unit="batch", leave=False):
        inputs, labels = _to(inputs, device), labels.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = _forward(model, inputs)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(labels)
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    return loss_sum / count, correct / count


@torch.inference_mode()
def predict(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False,
            desc: str = "eval") -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, C) and labels (N,) of every sample, in loader order, in eval mode."""
    model.eval()
    all_logits, all_labels = [], []
    for inputs, labels in tqdm(loader, desc=desc, unit="batch", leave=False):
        with _autocast(device, amp):
            logits = _forward(model, _to(inputs, device))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits).numpy(), torch.cat(all_labels).numpy()


def loss_and_accuracy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Per-sample mean cross-entropy and accuracy."""
    loss = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long()).item()
    return loss, float(np.mean(logits.argmax(1) == labels))


def validate(model: nn.Module, loader: DataLoader, device: torch.device, amp: bool = False) -> tuple[float, float]:
    """Per-sample loss and accuracy on `loader` (no augmentation, no updates)."""
    return loss_and_accuracy(*predict(model, loader, device, amp, desc="val"))


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
        evaluate_fn: Callable[[nn.Module, DataLoader, torch.device, bool], tuple[float, float]] = validate,
        on_epoch_end: Callable[[int, nn.Module], None] | None = None) -> FitResult:
    """Train for `stage.epochs`, then restore the best epoch's weights into `model`.

    `live` is a dvclive.Live (or None): train/val loss and accuracy and the learning
    rate are logged per epoch.
    """
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=stage.lr, weight_decay=train.weight_decay)
    scheduler = make_scheduler(optimizer, stage, train)
    best = BestEpoch()
    history: list[EpochRecord] = []
    for epoch in range(1, stage.epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_epoch(model, train_loader, optimizer, device, train.amp,
                                            desc=f"epoch {epoch}/{stage.epochs}")
        val_loss, val_acc = evaluate_fn(model, val_loader, device, train.amp)
        improved = best.update(epoch, val_acc, val_loss, model)
        history.append(EpochRecord(epoch, lr, train_loss, train_acc, val_loss, val_acc, improved))
        log.info("epoch %d/%d lr %.2e train loss %.4f acc %.3f | val loss %.4f acc %.3f%s", epoch, stage.epochs,
                 lr, train_loss, train_acc, val_loss, val_acc, "  *best*" if improved else "")
        if live is not None:
            for name, value in (("train/loss", train_loss), ("train/accuracy", train_acc),
                                ("val/loss", val_loss), ("val/accuracy", val_acc), ("lr", lr)):
                live.log_metric(name, value)
            live.next_step()
        if on_epoch_end is not None:
            on_epoch_end(epoch, model)
        scheduler.step()
    if best.state is None or best.epoch is None:  # only when validation loss or accuracy is NaN throughout
        raise TrainingError(f"no epoch had a finite validation loss (last: {history[-1].val_loss}); "
                            f"training diverged: lower the stage's lr in params.yaml")
    model.load_state_dict(best.state)
    log.info("restored best epoch %d (val acc %.3f, loss %.4f)", best.epoch, best.accuracy, best.loss)
    return FitResult(best.epoch, history)


def save_checkpoint(path: Path, model: nn.Module, meta: dict[str, Any], result: FitResult) -> None:
    """models/<name>.pt: the best weights plus what is needed to rebuild and report the model."""
    checkpoint = {**meta, "state_dict": model.state_dict(), "best_epoch": result.best_epoch,
                  "epochs": len(result.history), "history": [asdict(r) for r in result.history]}
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model not found; run the stage that trains it (`dvc repro`)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign file: torch raises several types
        raise InputError(f"{path}: cannot load the model file ({exc}); re-run the stage that trains it") from exc
    missing = [k for k in ("kind", "state_dict", "history", "best_epoch") if k not in checkpoint]
    if missing:
        raise InputError(f"{path}: not a twostream model file (lacks {', '.join(missing)})")
    return checkpoint

