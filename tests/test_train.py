import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from twostream.checkpoint import checkpoint_meta, load_checkpoint
from twostream.errors import ParamsError, TrainingError
from twostream.models import ModelSpec
from twostream.params import CyclicParams, StageTrainParams, load_params, load_runtime, parse_params, read_yaml
from twostream.train import (BestEpoch, cyclic_lr, fit, loss_and_accuracy, make_loader, make_scheduler,
                             seed_everything, stage_params, train_stage, validate)

PARAMS = load_params("params.yaml")
RUNTIME = dataclasses.replace(load_runtime("runtime.yaml"), device="cpu", num_workers=0, pin_memory=False,
                              progress=False)
CYCLIC = CyclicParams(base_lr=1e-5, step_size_up=5, step_size_down=5, decay=0.5)


def stage(epochs=6, lr=1e-2, step_size=2, gamma=0.5, warmup_epochs=0):
    return StageTrainParams(epochs=epochs, lr=lr, warmup_epochs=warmup_epochs, step_size=step_size, gamma=gamma,
                            augment=False)


def train_params(schedule="step", batch_size=8):
    return dataclasses.replace(PARAMS.train, schedule=schedule, batch_size=batch_size, cyclic=CYCLIC)


def test_cyclic_schedule_matches_the_documented_sequence():
    got = [cyclic_lr(e, 1e-5, 1e-4, CYCLIC) for e in range(21)]
    up1 = [1e-5 + 9e-5 * k / 5 for k in range(6)]          # 1e-5 .. 1e-4 in 5 epochs
    down1 = [1e-4 - 9e-5 * k / 5 for k in range(1, 5)]     # back towards 1e-5
    up2 = [1e-5 + 4e-5 * k / 5 for k in range(6)]          # second cycle peaks at 5e-5 (half)
    down2 = [5e-5 - 4e-5 * k / 5 for k in range(1, 6)]
    np.testing.assert_allclose(got, up1 + down1 + up2 + down2, rtol=1e-9)
    assert max(got[10:20]) == pytest.approx(5e-5) and got[10] == pytest.approx(1e-5)


def scheduled_lrs(schedule, epochs, st):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=st.lr)
    scheduler = make_scheduler(optimizer, st, train_params(schedule))
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_make_scheduler_cyclic_and_step():
    np.testing.assert_allclose(scheduled_lrs("cyclic", 21, stage(lr=1e-4)),
                               [cyclic_lr(e, 1e-5, 1e-4, CYCLIC) for e in range(21)], rtol=1e-9)
    np.testing.assert_allclose(scheduled_lrs("step", 12, stage(lr=1e-4, step_size=5, gamma=0.5)),
                               [1e-4] * 5 + [5e-5] * 5 + [2.5e-5] * 2, rtol=1e-9)
    # a cyclic base_lr at or above a stage's lr is refused with params.yaml, before any stage runs
    # (make_scheduler no longer checks it again)
    raw = read_yaml("params.yaml")
    raw["train"]["schedule"] = "cyclic"
    raw["train_spatial"]["lr"] = 1e-6
    with pytest.raises(ParamsError, match="train.cyclic.base_lr: must be below every stage's lr .*train_spatial.lr"):
        parse_params(raw)


def test_warmup_rises_linearly_then_the_step_schedule_starts():
    got = scheduled_lrs("step", 10, stage(lr=1e-3, warmup_epochs=2, step_size=3, gamma=0.5))
    np.testing.assert_allclose(got, [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4],
                               rtol=1e-9)
    raw = read_yaml("params.yaml")
    raw["train"]["schedule"] = "cyclic"
    raw["train_flow"]["warmup_epochs"] = 2
    with pytest.raises(ParamsError, match="train_flow.warmup_epochs: must be 0 with train.schedule: cyclic"):
        parse_params(raw)
    raw["train"]["schedule"] = "step"
    raw["train_flow"]["warmup_epochs"] = raw["train_flow"]["epochs"]
    with pytest.raises(ParamsError, match="train_flow.warmup_epochs: must be below train_flow.epochs"):
        parse_params(raw)


def test_best_epoch_needs_accuracy_up_and_loss_down():
    model = nn.Linear(2, 2)
    best = BestEpoch()
    script = [(0.5, 1.0, True), (0.6, 0.9, True), (0.7, 0.95, False), (0.55, 0.8, False), (0.62, 0.85, True),
              (0.62, 0.5, False)]  # equal accuracy is not a rise
    for epoch, (acc, loss, expected) in enumerate(script, start=1):
        assert best.update(epoch, acc, loss, model) is expected, epoch
    assert best.epoch == 5


def tiny_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return TensorDataset(x, y)


def tiny_model():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_fit_restores_a_real_copy_of_the_best_epoch():
    seed_everything(0)
    model = tiny_model()
    tp = train_params()
    loader = make_loader(tiny_data(), tp.batch_size, RUNTIME, shuffle=True, seed=0)
    scripted = iter([(1.0, 0.5), (0.9, 0.6), (0.95, 0.7), (0.8, 0.55), (0.85, 0.62), (2.0, 0.3)])  # (loss, acc)
    snapshots = {}

    def evaluate_fn(m, *args):  # called once per epoch, after its training pass
        snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in m.state_dict().items()}
        return next(scripted)

    result = fit(model, loader, loader, stage(epochs=6), tp, torch.device("cpu"), evaluate_fn=evaluate_fn,
                 progress=False)
    assert result.best_epoch == 5
    assert [r.best for r in result.history] == [True, True, False, False, True, False]
    final = model.state_dict()
    for key in final:
        torch.testing.assert_close(final[key], snapshots[5][key])
    assert any(not torch.equal(snapshots[5][k], snapshots[6][k]) for k in final)  # training moved on after 5
    assert result.best.val_accuracy == 0.62
    assert [r.lr for r in result.history] == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3, 2.5e-3])


def test_training_is_deterministic_on_cpu():
    def run():
        seed_everything(123)
        model = tiny_model()
        tp = train_params()
        loader = make_loader(tiny_data(), tp.batch_size, RUNTIME, shuffle=True, seed=123)
        fit(model, loader, loader, stage(epochs=3), tp, torch.device("cpu"))
        return model.state_dict()
    first, second = run(), run()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)


def test_fit_learns_a_separable_problem():
    seed_everything(0)
    model = tiny_model()
    tp = train_params(batch_size=16)
    loader = make_loader(tiny_data(256), tp.batch_size, RUNTIME, shuffle=True, seed=0)
    result = fit(model, loader, loader, stage(epochs=15, lr=1e-2, step_size=10), tp, torch.device("cpu"))
    assert result.best.val_accuracy > 0.9
    loss, acc = validate(model, loader, torch.device("cpu"))
    assert acc == pytest.approx(result.best.val_accuracy)


def test_accuracy_is_per_sample():
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]], np.float32)
    labels = np.array([0, 0, 0])
    loss, acc = loss_and_accuracy(logits, labels)
    assert acc == pytest.approx(2 / 3)
    expected = -np.mean(np.log(np.exp(logits[np.arange(3), labels]) / np.exp(logits).sum(1)))
    assert loss == pytest.approx(expected, rel=1e-5)


def test_diverged_training_is_a_clear_error():
    model = tiny_model()
    tp = train_params()
    loader = make_loader(tiny_data(), tp.batch_size, RUNTIME, shuffle=True, seed=0)
    with pytest.raises(TrainingError, match="no epoch had a finite validation loss"):
        fit(model, loader, loader, stage(epochs=2), tp, torch.device("cpu"),
            evaluate_fn=lambda *a: (float("nan"), 0.5))


def test_a_lone_last_training_sample_is_dropped():
    tp = train_params(batch_size=8)
    def batches(n, shuffle):
        return len(list(make_loader(tiny_data(n), tp.batch_size, RUNTIME, shuffle=shuffle, seed=0)))
    assert batches(17, shuffle=True) == 2  # 8 + 8, the 17th dropped
    assert batches(18, shuffle=True) == 3  # 8 + 8 + 2 kept
    assert batches(17, shuffle=False) == 3  # evaluation sees all


def test_stage_params_records_what_the_stage_tracks():
    recorded = stage_params(PARAMS, "train_spatial", frames={"position": "middle"})
    assert set(recorded) == {"seed", "model", "train", "train_spatial", "augment", "frames"}
    assert recorded["train_spatial"]["lr"] == PARAMS.train_spatial.lr
    assert recorded["augment"]["color_jitter"] == PARAMS.augment.color_jitter
    flow = stage_params(PARAMS, "train_flow")  # flow stacks are not augmented: augment is not tracked
    assert set(flow) == {"seed", "model", "train", "train_flow"}
    with pytest.raises(ParamsError, match="unknown training stage"):
        stage_params(PARAMS, "train_audio")


def test_train_stage_writes_the_best_checkpoint_and_the_curves(tmp_path):
    seed_everything(0)
    model = tiny_model()
    params = dataclasses.replace(PARAMS, train=train_params(batch_size=16),
                                 train_flow=stage(epochs=3, lr=1e-2, step_size=2))
    spec = ModelSpec("temporal", 4, False, False)  # recorded only: the tiny model is not rebuilt here
    meta = checkpoint_meta(spec, model, "hmdb51", ("a", "b", "c", "d"), 32, stage_params(params, "train_flow"))
    out, curves = tmp_path / "models" / "m.pt", tmp_path / "curves" / "m"
    result = train_stage("train_flow", model, tiny_data(64), tiny_data(32, seed=1), params, RUNTIME, out, curves,
                         meta)
    assert len(result.history) == 3 and 1 <= result.best_epoch <= 3
    checkpoint = load_checkpoint(out)
    assert checkpoint["best_epoch"] == result.best_epoch and checkpoint["epochs"] == 3
    assert [h["val_accuracy"] for h in checkpoint["history"]] == [r.val_accuracy for r in result.history]
    assert checkpoint["params"]["train_flow"]["epochs"] == 3 and checkpoint["num_params"] == 212
    for key, value in model.state_dict().items():  # the restored best epoch is what was saved
        torch.testing.assert_close(checkpoint["state_dict"][key], value, rtol=0, atol=0)
    names = sorted(p.relative_to(curves).as_posix() for p in curves.rglob("*.tsv"))
    assert names == ["lr.tsv", "train/accuracy.tsv", "train/loss.tsv", "val/accuracy.tsv", "val/loss.tsv"]
    assert len((curves / "val" / "accuracy.tsv").read_text().splitlines()) == 1 + 3  # header + one row per epoch
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".")) == []  # no leftovers


def test_train_stage_writes_nothing_when_training_fails(tmp_path):
    params = dataclasses.replace(PARAMS, train=train_params(), train_flow=stage(epochs=2))
    model = tiny_model()
    meta = checkpoint_meta(ModelSpec("temporal", 4, False, False), model, "hmdb51", ("a", "b", "c", "d"), 32, {})
    broken = TensorDataset(torch.full((16, 8), float("nan")), torch.zeros(16, dtype=torch.long))  # NaN loss
    with pytest.raises(TrainingError, match="no epoch had a finite validation loss"):
        train_stage("train_flow", model, broken, broken, params, RUNTIME, tmp_path / "m.pt",
                    tmp_path / "curves", meta)
    assert list(tmp_path.iterdir()) == []


def _augmented_batches(num_workers: int) -> list[torch.Tensor]:
    from twostream.datasets import FrameDataset, SubsetArrays
    frames = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    dataset = FrameDataset(SubsetArrays({"frames": frames}, np.arange(8), "m.csv"), PARAMS.augment)
    seed_everything(0)
    runtime = dataclasses.replace(RUNTIME, num_workers=num_workers)
    return [x for x, _ in make_loader(dataset, 4, runtime, shuffle=True, seed=0)]


def test_augmented_training_batches_do_not_depend_on_num_workers():
    """runtime.yaml promises that nothing in it changes a result; num_workers is in it."""
    for a, b in zip(_augmented_batches(0), _augmented_batches(1), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
