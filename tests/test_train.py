import dataclasses

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from twostream.checkpoint import checkpoint_meta, load_checkpoint
from twostream.errors import ParamsError, TrainingError
from twostream.models import ModelSpec
from twostream.params import (CyclicParams, StageTrainParams, StepParams, TwoStreamTrainParams, load_params, load_runtime,
                              parse_params, read_yaml)
from twostream import train as train_module
from twostream.train import (BestEpoch, cyclic_lr, fit, loss_and_accuracy, make_loader, make_optimizer, make_scheduler,
                             seed_everything, stage_params, train_stage, validate)

PARAMS = load_params("params.yaml")
RUNTIME = dataclasses.replace(load_runtime("runtime.yaml"), device="cpu", loader_workers=0, pin_memory=False,
                              progress=False)
CYCLIC = CyclicParams(base_lr=1e-5, step_size_up=5, step_size_down=5, decay=0.5)


def stage(epochs=6, lr=1e-2, step_size=2, gamma=0.5, warmup_epochs=0):
    return StageTrainParams(epochs=epochs, lr=lr, augment=False,
                            step=StepParams(warmup_epochs=warmup_epochs, step_size=step_size, gamma=gamma))


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


def scheduled_lrs(schedule, epochs, st, steps_per_epoch=1):
    """The lr of every batch of `epochs` epochs, the scheduler stepped after each batch as `fit` does."""
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=st.lr)
    scheduler = make_scheduler(optimizer, st, train_params(schedule), steps_per_epoch)
    lrs = []
    for _ in range(epochs * steps_per_epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_cyclic_lr_moves_within_epochs():
    # a quarter of the way up the first 5-epoch climb, then half-way down the second cycle
    assert cyclic_lr(1.25, 1e-5, 1e-4, CYCLIC) == pytest.approx(1e-5 + 9e-5 * 1.25 / 5)
    assert cyclic_lr(17.5, 1e-5, 1e-4, CYCLIC) == pytest.approx(5e-5 - 4e-5 * 2.5 / 5)


def test_make_scheduler_cyclic_and_step():
    # one lr per batch: the cyclical one moves after every batch
    np.testing.assert_allclose(scheduled_lrs("cyclic", 21, stage(lr=1e-4), steps_per_epoch=3),
                               [cyclic_lr(i / 3, 1e-5, 1e-4, CYCLIC) for i in range(63)], rtol=1e-9)
    # the step schedule changes the lr only between epochs
    np.testing.assert_allclose(scheduled_lrs("step", 12, stage(lr=1e-4, step_size=5, gamma=0.5), steps_per_epoch=4),
                               np.repeat([1e-4] * 5 + [5e-5] * 5 + [2.5e-5] * 2, 4), rtol=1e-9)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        make_scheduler(torch.optim.Adam(nn.Linear(2, 2).parameters()), stage(), train_params("cyclic"), 0)
    # a cyclic base_lr at or above a stage's lr is refused with params.yaml, before any stage runs
    # (make_scheduler no longer checks it again)
    raw = read_yaml("params.yaml")
    raw["train"]["schedule"] = "cyclic"
    raw["stanford40_frames"]["lr"] = 1e-6
    with pytest.raises(ParamsError, match="train.cyclic.base_lr: must be below every stage's lr .*stanford40_frames.lr"):
        parse_params(raw)


def test_warmup_rises_linearly_then_the_step_schedule_starts():
    got = scheduled_lrs("step", 10, stage(lr=1e-3, warmup_epochs=2, step_size=3, gamma=0.5))
    np.testing.assert_allclose(got, [1e-3 / 3, 2e-3 / 3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 5e-4, 2.5e-4, 2.5e-4],
                               rtol=1e-9)
    raw = read_yaml("params.yaml")
    raw["train"]["schedule"] = "step"
    raw["hmdb51_flow"]["step"]["warmup_epochs"] = raw["hmdb51_flow"]["epochs"]
    with pytest.raises(ParamsError, match="hmdb51_flow.step.warmup_epochs: must be below hmdb51_flow.epochs"):
        parse_params(raw)
    # the cyclical schedule ignores the step section (it starts low by itself)
    raw["train"]["schedule"] = "cyclic"
    raw["hmdb51_flow"]["step"]["warmup_epochs"] = 2
    assert parse_params(raw).hmdb51_flow.step.warmup_epochs == 2


class Fused(nn.Module):
    """A stand-in two-stream model: a trained trunk and new fusion layers."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(8, 16)
        self.fusion = nn.Sequential(nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x):
        return self.fusion(self.trunk(x))


def test_fusion_lr_puts_the_new_fusion_layers_in_their_own_group():
    model = Fused()
    one = make_optimizer(model, 1e-4)
    assert len(one.param_groups) == 1 and one.param_groups[0]["params"] == list(model.parameters())
    two = make_optimizer(model, 1e-4, 0.0, fusion_lr=1e-3)
    streams, fusion = two.param_groups
    assert [id(p) for p in fusion["params"]] == [id(p) for p in model.fusion.parameters()]
    assert [id(p) for p in streams["params"]] == [id(p) for p in model.trunk.parameters()]
    assert (streams["lr"], fusion["lr"]) == (1e-4, 1e-3)
    # the schedule moves both groups by the same factor: the fusion group peaks at fusion_lr
    scheduler = make_scheduler(two, stage(lr=1e-4), train_params("cyclic"), steps_per_epoch=2)
    for i in range(1, 15):
        two.step()
        scheduler.step()
        expected = cyclic_lr(i / 2, 1e-5, 1e-4, CYCLIC)
        assert streams["lr"] == pytest.approx(expected) and fusion["lr"] == pytest.approx(10 * expected)
    with pytest.raises(TypeError, match="fusion_lr needs a two-stream model"):
        make_optimizer(tiny_model(), 1e-4, 0.0, fusion_lr=1e-3)


def test_fit_trains_the_fusion_layers_at_the_stages_fusion_lr(monkeypatch):
    built = []

    def recording(*args, **kwargs):
        optimizer = make_optimizer(*args, **kwargs)
        built.append([group["lr"] for group in optimizer.param_groups])
        return optimizer

    monkeypatch.setattr(train_module, "make_optimizer", recording)
    tp, loader = train_params(), make_loader(tiny_data(), 8, RUNTIME, shuffle=True, seed=0)
    fused = TwoStreamTrainParams(epochs=1, lr=1e-3, augment=False, fusion_lr=1e-2,
                                 step=StepParams(warmup_epochs=0, step_size=2, gamma=0.5))
    fit(Fused(), loader, loader, fused, tp, torch.device("cpu"), progress=False)
    fit(tiny_model(), loader, loader, stage(epochs=1, lr=1e-3), tp, torch.device("cpu"), progress=False)
    assert built == [[1e-3, 1e-2], [1e-3]]


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
    augmenting = dataclasses.replace(PARAMS, stanford40_frames=dataclasses.replace(PARAMS.stanford40_frames, augment=True))
    recorded = stage_params(augmenting, "stanford40_frames", frames={"position": "middle"})
    assert set(recorded) == {"seed", "model", "train", "stanford40_frames", "augment", "frames"}
    assert recorded["stanford40_frames"]["lr"] == PARAMS.stanford40_frames.lr
    assert recorded["augment"]["color_jitter"] == PARAMS.augment.color_jitter
    plain = dataclasses.replace(PARAMS, stanford40_frames=dataclasses.replace(PARAMS.stanford40_frames, augment=False))
    assert "augment" not in stage_params(plain, "stanford40_frames")  # without augmentation its params are not used
    # the flow stacks' translation has no params of its own: the spatial augment section is not tracked
    assert PARAMS.hmdb51_flow.augment and set(stage_params(PARAMS, "hmdb51_flow")) == {"seed", "model", "train",
                                                                                      "hmdb51_flow"}
    with pytest.raises(ParamsError, match="unknown training stage"):
        stage_params(PARAMS, "train_audio")


def test_train_stage_writes_the_best_checkpoint_and_the_curves(tmp_path):
    seed_everything(0)
    model = tiny_model()
    params = dataclasses.replace(PARAMS, train=train_params(batch_size=16),
                                 hmdb51_flow=stage(epochs=3, lr=1e-2, step_size=2))
    spec = ModelSpec("temporal", 4, False, False)  # recorded only: the tiny model is not rebuilt here
    meta = checkpoint_meta(spec, model, "hmdb51", ("a", "b", "c", "d"), 32, stage_params(params, "hmdb51_flow"))
    out, curves = tmp_path / "models" / "m.pt", tmp_path / "curves" / "m"
    result = train_stage("hmdb51_flow", model, tiny_data(64), tiny_data(32, seed=1), params, RUNTIME, out, curves,
                         meta)
    assert len(result.history) == 3 and 1 <= result.best_epoch <= 3
    checkpoint = load_checkpoint(out)
    assert checkpoint["best_epoch"] == result.best_epoch and checkpoint["epochs"] == 3
    assert [h["val_accuracy"] for h in checkpoint["history"]] == [r.val_accuracy for r in result.history]
    assert checkpoint["params"]["hmdb51_flow"]["epochs"] == 3 and checkpoint["num_params"] == 212
    for key, value in model.state_dict().items():  # the restored best epoch is what was saved
        torch.testing.assert_close(checkpoint["state_dict"][key], value, rtol=0, atol=0)
    names = sorted(p.relative_to(curves).as_posix() for p in curves.rglob("*.tsv"))
    assert names == ["lr.tsv", "train/accuracy.tsv", "train/loss.tsv", "val/accuracy.tsv", "val/loss.tsv"]
    assert len((curves / "val" / "accuracy.tsv").read_text().splitlines()) == 1 + 3  # header + one row per epoch
    assert sorted(p.name for p in tmp_path.rglob("*") if p.name.startswith(".")) == []  # no leftovers


def test_train_stage_writes_nothing_when_training_fails(tmp_path):
    params = dataclasses.replace(PARAMS, train=train_params(), hmdb51_flow=stage(epochs=2))
    model = tiny_model()
    meta = checkpoint_meta(ModelSpec("temporal", 4, False, False), model, "hmdb51", ("a", "b", "c", "d"), 32, {})
    broken = TensorDataset(torch.full((16, 8), float("nan")), torch.zeros(16, dtype=torch.long))  # NaN loss
    with pytest.raises(TrainingError, match="no epoch had a finite validation loss"):
        train_stage("hmdb51_flow", model, broken, broken, params, RUNTIME, tmp_path / "m.pt",
                    tmp_path / "curves", meta)
    assert list(tmp_path.iterdir()) == []


def _augmented_batches(loader_workers: int) -> list[torch.Tensor]:
    from twostream.datasets import FrameDataset, SubsetArrays
    frames = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    dataset = FrameDataset(SubsetArrays({"frames": frames}, np.arange(8), "m.csv"), PARAMS.augment)
    seed_everything(0)
    runtime = dataclasses.replace(RUNTIME, loader_workers=loader_workers)
    return [x for x, _ in make_loader(dataset, 4, runtime, shuffle=True, seed=0)]


def test_augmented_training_batches_do_not_depend_on_num_workers():
    """runtime.yaml promises that nothing in it changes a result; loader_workers is in it."""
    for a, b in zip(_augmented_batches(0), _augmented_batches(1), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# --- the GPU's settings, exercised on the CPU ----------------------------------------------

def conv_data(n=48, seed=0):
    """Tiny images whose class is the quadrant holding a bright blob."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 16, 16, generator=g) * 0.1
    y = torch.randint(0, 4, (n,), generator=g)
    for i, label in enumerate(y.tolist()):
        r, c = divmod(label, 2)
        x[i, :, 8 * r:8 * r + 8, 8 * c:8 * c + 8] += 1.0
    return TensorDataset(x, y)


def conv_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4))


def fit_conv(channels_last=False, amp=False, epochs=3):
    seed_everything(0)
    model = conv_model()
    tp = dataclasses.replace(train_params(batch_size=8), amp=amp)
    loader = make_loader(conv_data(), tp.batch_size, RUNTIME, shuffle=True, seed=0)
    seen = {"inputs_nhwc": [], "weights_nhwc": [], "dtypes": set()}

    def hook(module, inputs, output):
        seen["inputs_nhwc"].append(inputs[0].is_contiguous(memory_format=torch.channels_last))
        seen["weights_nhwc"].append(module.weight.is_contiguous(memory_format=torch.channels_last))
        seen["dtypes"].add(output.dtype)
    model[0].register_forward_hook(hook)
    result = fit(model, loader, loader, stage(epochs=epochs, lr=1e-2), tp, torch.device("cpu"), progress=False,
                 channels_last=channels_last)
    return model, result, seen


def test_channels_last_trains_nhwc_and_matches_the_default_layout():
    """runtime.yaml channels_last: model and image batches in NHWC order; the same training up to rounding."""
    model, result, seen = fit_conv(channels_last=True)
    assert all(seen["inputs_nhwc"]) and all(seen["weights_nhwc"]) and len(seen["inputs_nhwc"]) > 3
    plain_model, plain, plain_seen = fit_conv(channels_last=False)
    assert not any(plain_seen["inputs_nhwc"])
    for a, b in zip(result.history, plain.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4, abs=1e-5)
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=1 / 48 + 1e-9)
    for key, value in plain_model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-3, atol=1e-4)


def test_amp_runs_bf16_autocast_on_the_cpu_too():
    """train.amp: bf16 autocast in training and validation, on the CPU as on CUDA; it still learns,
    and the result is near (not equal to) the float32 one."""
    model, result, seen = fit_conv(amp=True, epochs=4)
    assert seen["dtypes"] == {torch.bfloat16}
    assert all(np.isfinite(r.train_loss) for r in result.history)
    _, plain, plain_seen = fit_conv(amp=False, epochs=4)
    assert plain_seen["dtypes"] == {torch.float32}
    assert result.best.val_accuracy >= 0.9 and plain.best.val_accuracy >= 0.9
    assert result.history[-1].train_loss != plain.history[-1].train_loss
    assert result.history[0].train_loss == pytest.approx(plain.history[0].train_loss, rel=0.05)


def test_pinned_memory_only_for_a_cuda_device():
    pinned = dataclasses.replace(RUNTIME, pin_memory=True)
    data = tiny_data()
    assert make_loader(data, 8, pinned, shuffle=False, seed=0, device=torch.device("cuda")).pin_memory
    assert not make_loader(data, 8, pinned, shuffle=False, seed=0, device=torch.device("cpu")).pin_memory
    assert not make_loader(data, 8, RUNTIME, shuffle=False, seed=0, device=torch.device("cuda")).pin_memory


def test_train_stage_passes_channels_last_from_runtime(monkeypatch, tmp_path):
    import twostream.train as train_mod

    calls = {}

    def fake_fit(*args, **kwargs):
        calls.update(kwargs)
        raise RuntimeError("stop")
    monkeypatch.setattr(train_mod, "fit", fake_fit)
    runtime = dataclasses.replace(RUNTIME, channels_last=True)
    with pytest.raises(RuntimeError, match="stop"):
        train_stage("hmdb51_flow", tiny_model(), tiny_data(), tiny_data(), PARAMS, runtime, tmp_path / "m.pt", None,
                    {"num_params": 1})
    assert calls["channels_last"] is True


@pytest.mark.slow
def test_the_worker_count_changes_no_weight():
    """Dropout draws from the process's RNG; the loaders draw from their own generators, so no
    workers, one persistent worker or two give the same weights after several epochs."""
    def data(n, seed):
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 8, generator=g)
        return TensorDataset(x, (x[:, 0] > 0).long())

    def weights(workers):
        runtime = dataclasses.replace(RUNTIME, loader_workers=workers)
        seed_everything(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 2))
        train = make_loader(data(48, 0), 8, runtime, shuffle=True, seed=0)
        val = make_loader(data(16, 1), 8, runtime, shuffle=False, seed=0)
        fit(model, train, val, stage(epochs=3), train_params(), torch.device("cpu"), progress=False)
        return model.state_dict(), torch.get_rng_state()

    (none, rng), (one, rng_one), (two, _) = weights(0), weights(1), weights(2)
    for key, value in none.items():
        assert torch.equal(one[key], value) and torch.equal(two[key], value), key
    assert torch.equal(rng, rng_one)  # the loaders left the process's RNG to the model alone
