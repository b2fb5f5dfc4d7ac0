import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from twostream.params import CyclicParams, ParamsError, StageTrainParams, load_params
from twostream.train import (BestEpoch, TrainingError, cyclic_lr, fit, loss_and_accuracy, make_loader,
                             make_scheduler, seed_everything, validate)

PARAMS = load_params("params.yaml")
CYCLIC = CyclicParams(base_lr=1e-5, step_size_up=5, step_size_down=5, decay=0.5)


def stage(epochs=6, lr=1e-2, step_size=2, gamma=0.5):
    return StageTrainParams(epochs=epochs, lr=lr, step_size=step_size, gamma=gamma, augment=False)


def train_params(schedule="step", batch_size=8):
    return dataclasses.replace(PARAMS.train, schedule=schedule, batch_size=batch_size, cyclic=CYCLIC,
                               device="cpu", num_workers=0)


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
    with pytest.raises(ParamsError, match="train.cyclic.base_lr: must be below the stage's lr"):
        scheduled_lrs("cyclic", 1, stage(lr=1e-6))


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
    loader = make_loader(tiny_data(), tp, shuffle=True, seed=0)
    scripted = iter([(1.0, 0.5), (0.9, 0.6), (0.95, 0.7), (0.8, 0.55), (0.85, 0.62), (2.0, 0.3)])  # (loss, acc)
    snapshots = {}

    def on_epoch_end(epoch, m):
        snapshots[epoch] = {k: v.clone() for k, v in m.state_dict().items()}

    result = fit(model, loader, loader, stage(epochs=6), tp, torch.device("cpu"),
                 evaluate_fn=lambda *a: next(scripted), on_epoch_end=on_epoch_end)
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
        loader = make_loader(tiny_data(), tp, shuffle=True, seed=123)
        fit(model, loader, loader, stage(epochs=3), tp, torch.device("cpu"))
        return model.state_dict()
    first, second = run(), run()
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0)


def test_fit_learns_a_separable_problem():
    seed_everything(0)
    model = tiny_model()
    tp = train_params(batch_size=16)
    loader = make_loader(tiny_data(256), tp, shuffle=True, seed=0)
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
    loader = make_loader(tiny_data(), tp, shuffle=True, seed=0)
    with pytest.raises(TrainingError, match="no epoch had a finite validation loss"):
        fit(model, loader, loader, stage(epochs=2), tp, torch.device("cpu"),
            evaluate_fn=lambda *a: (float("nan"), 0.5))


def test_a_lone_last_training_sample_is_dropped():
    tp = train_params(batch_size=8)
    assert len(list(make_loader(tiny_data(17), tp, shuffle=True, seed=0))) == 2  # 8 + 8, the 17th dropped
    assert len(list(make_loader(tiny_data(18), tp, shuffle=True, seed=0))) == 3  # 8 + 8 + 2 kept
    assert len(list(make_loader(tiny_data(17), tp, shuffle=False, seed=0))) == 3  # evaluation sees all
