"""Figures: the pure helpers' numbers, valid non-blank PNGs, atomic writes, clear input errors."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from twostream import plots
from twostream.classes import HMDB51_CLASSES, NUM_CLASSES
from twostream.models import SPATIAL_FEATURES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POSITIONS = ("first", "first_middle", "middle", "middle_last", "last")


# ------------------------------------------------------------------ pure helpers

def test_row_normalise_rows_sum_to_one_and_zero_row_stays_zero():
    matrix = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = plots.row_normalise(matrix)
    np.testing.assert_allclose(out, [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    assert np.all(np.isfinite(out))
    assert out.dtype == np.float64


def test_row_normalise_rejects_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        plots.row_normalise(np.ones(3))


def test_stream_shares_all_spatial():
    weight = np.zeros((4, 6))
    weight[:, :4] = 1.0
    assert plots.stream_shares(weight, 4) == pytest.approx((1.0, 0.0))


def test_stream_shares_equal_weights_split_by_channel_count():
    weight = np.full((8, 6, 1, 1), -0.5)  # 4 spatial, 2 temporal channels; conv layout
    spatial, temporal = plots.stream_shares(weight, 4)
    assert (spatial, temporal) == pytest.approx((2 / 3, 1 / 3))
    assert spatial + temporal == pytest.approx(1.0)


def test_stream_shares_uses_squared_weight():
    weight = np.zeros((1, 2))
    weight[0] = [1.0, 2.0]  # squares 1 and 4
    assert plots.stream_shares(weight, 1) == pytest.approx((0.2, 0.8))


@pytest.mark.parametrize("weight, n_spatial, message", [
    (np.ones((4, 6, 3, 3)), 4, "shape"),
    (np.ones(6), 4, "shape"),
    (np.ones((4, 6)), 6, "n_spatial"),
    (np.ones((4, 6)), 0, "n_spatial"),
    (np.zeros((4, 6)), 4, "all zero"),
])
def test_stream_shares_rejects_bad_weight(weight, n_spatial, message):
    with pytest.raises(ValueError, match=message):
        plots.stream_shares(weight, n_spatial)


def test_block_mean_averages_uneven_blocks():
    matrix = np.arange(10, dtype=float).reshape(1, 10)
    out = plots._block_mean(matrix, max_cells=4)  # blocks of 3: [0,1,2] [3,4,5] [6,7,8] [9]
    np.testing.assert_allclose(out, [[1.0, 4.0, 7.0, 9.0]])


# ------------------------------------------------------------------ fixtures for figures

def _confusion(rng) -> np.ndarray:
    n = len(HMDB51_CLASSES)
    matrix = rng.integers(0, 3, size=(n, n)) + np.diag(rng.integers(10, 30, size=n))
    matrix[3] = 0  # a class with no samples
    return matrix


def _history(epochs: int = 6) -> list[dict]:
    return [dict(epoch=e, lr=1e-3 * 0.5 ** (e // 3), train_loss=2.0 / e, train_accuracy=1 - 0.8 / e,
                 val_loss=2.2 / e + 0.1, val_accuracy=0.7 - 0.6 / e) for e in range(1, epochs + 1)]


def _frames(rng, videos: int = 2, size: int = 16) -> np.ndarray:
    return rng.integers(0, 256, size=(videos, len(POSITIONS), size, size, 3), dtype=np.uint8)


def _weight(rng) -> np.ndarray:
    return rng.normal(size=(64, 96)).astype(np.float32)


def _table() -> dict:
    return {p: {"train": 0.9 - 0.05 * i, "val": 0.6 + 0.02 * i, "test": 0.5 + 0.03 * i}
            for i, p in enumerate(POSITIONS)}


def _per_class(rng) -> dict:
    models = {name: rng.uniform(0, 1, len(HMDB51_CLASSES)) for name in ("Frames", "Optical flow", "Two-stream")}
    models["Frames"][3] = np.nan  # a class without test samples
    return {"one clip per video": models, "the whole video": {k: v[::-1] for k, v in models.items()}}


def _render(kind: str, rng, path: Path) -> None:
    if kind == "confusion":
        plots.confusion_png(_confusion(rng), HMDB51_CLASSES, path, "hmdb51_frames test")
    elif kind == "curves":
        plots.curves_png(_history(), path, "hmdb51_flow", best_epoch=4)
    elif kind == "frames":
        plots.frame_positions_png(_frames(rng), ["clap — a", "run — b"], POSITIONS, path)
    elif kind == "fusion":
        plots.fusion_weights_png(_weight(rng), path, n_spatial=64)
    elif kind == "positions":
        plots.position_study_png(_table(), path)
    elif kind == "per_class":
        plots.per_class_accuracy_png(_per_class(rng), HMDB51_CLASSES, path)
    else:
        raise AssertionError(kind)


# (figure kind, expected (height, width) in pixels, roughly)
SIZES = {
    "confusion": (7 * plots.DPI, 8 * plots.DPI),
    "curves": (4.6 * plots.DPI, 15 * plots.DPI),
    "frames": ((2 * 2.45 + 0.3) * plots.DPI, 5 * 2.2 * plots.DPI),
    "fusion": (5.2 * plots.DPI, 13 * plots.DPI),
    "positions": (4.8 * plots.DPI, 10 * plots.DPI),
    "per_class": ((2 * 3.6 + 0.4) * plots.DPI, (len(HMDB51_CLASSES) + 2) * plots.DPI),
}


# ------------------------------------------------------------------ figures

@pytest.mark.parametrize("kind", sorted(SIZES))
def test_figure_is_a_valid_non_blank_png_and_no_temp_is_left(kind, rng, tmp_path):
    path = tmp_path / "nested" / "dir" / f"{kind}.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _render(kind, rng, path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    height, width = SIZES[kind]
    assert image.shape[0] == pytest.approx(height, rel=0.05)
    assert image.shape[1] == pytest.approx(width, rel=0.05)
    assert image[..., :3].var() > 0
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


@pytest.mark.parametrize("kind", sorted(SIZES))
def test_failed_render_leaves_no_file(kind, rng, tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    path = tmp_path / f"{kind}.png"
    with pytest.raises(RuntimeError, match="disk full"):
        _render(kind, rng, path)
    assert list(tmp_path.iterdir()) == []


def test_failed_render_keeps_the_previous_file(rng, tmp_path, monkeypatch):
    path = tmp_path / "curves.png"
    path.write_bytes(b"previous")
    monkeypatch.setattr(Figure, "savefig", lambda *a, **k: (_ for _ in ()).throw(OSError("io")))
    with pytest.raises(OSError):
        plots.curves_png(_history(), path, "t", best_epoch=1)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_confusion_with_empty_matrix_does_not_warn(tmp_path):
    path = tmp_path / "c.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plots.confusion_png(np.zeros((3, 3), dtype=int), ["a", "b", "c"], path, "empty")
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_confusion_title_reports_accuracy(tmp_path, monkeypatch):
    titles = []
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        titles.extend(ax.get_title() for ax in self.axes)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    plots.confusion_png(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "c.png", "toy")
    assert any("accuracy 87.5%" in t for t in titles)


def test_fusion_title_reports_stream_shares(tmp_path, monkeypatch):
    titles = []
    original = Figure.savefig

    def spy(self, *args, **kwargs):
        titles.append(self.get_suptitle())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    weight = np.zeros((8, 6))
    weight[:, :4] = 1.0
    weight[:, 4:] = np.sqrt(2.0)  # squares: 4 channels x 1 vs 2 channels x 2 -> 50/50
    plots.fusion_weights_png(weight, tmp_path / "f.png", n_spatial=4)
    assert "spatial 50% / temporal 50%" in titles[0]


@pytest.mark.parametrize("call, message", [
    (lambda p: plots.confusion_png(np.ones((3, 4)), ["a", "b", "c"], p, "t"), "square"),
    (lambda p: plots.confusion_png(np.ones((3, 3)), ["a", "b"], p, "t"), "class names"),
    (lambda p: plots.confusion_png(-np.ones((2, 2)), ["a", "b"], p, "t"), "non-negative"),
    (lambda p: plots.curves_png([], p, "t", 1), "empty"),
    (lambda p: plots.curves_png([{k: v for k, v in _history()[0].items() if k != "val_loss"}], p, "t", 1),
     "lacks key.*val_loss"),
    (lambda p: plots.frame_positions_png(np.zeros((2, 5, 8, 8), np.uint8), ["a", "b"], POSITIONS, p),
     "shape"),
    (lambda p: plots.frame_positions_png(np.zeros((2, 5, 8, 8, 3), np.float32), ["a", "b"], POSITIONS, p),
     "uint8"),
    (lambda p: plots.frame_positions_png(np.zeros((2, 5, 8, 8, 3), np.uint8), ["a"], POSITIONS, p),
     "row titles"),
    (lambda p: plots.frame_positions_png(np.zeros((2, 5, 8, 8, 3), np.uint8), ["a", "b"], POSITIONS[:4], p),
     "column headers"),
    (lambda p: plots.fusion_weights_png(np.ones((1024, 1536, 3, 3)), p, SPATIAL_FEATURES), "shape"),
    (lambda p: plots.fusion_weights_png(np.ones((1024, 512)), p, SPATIAL_FEATURES), "n_spatial"),
    (lambda p: plots.position_study_png({"first": {"train": 0.5, "val": 0.4}}, p), "lacks subset.*test"),
    (lambda p: plots.position_study_png({"first": {"train": 50, "val": 0.4, "test": 0.3}}, p), r"\[0, 1\]"),
    (lambda p: plots.position_study_png({}, p), "empty"),
    (lambda p: plots.per_class_accuracy_png({}, ["a", "b"], p), "no panels"),
    (lambda p: plots.per_class_accuracy_png({"one clip": {}}, ["a", "b"], p), "no models"),
    (lambda p: plots.per_class_accuracy_png({"one clip": {"Frames": [0.5]}}, ["a", "b"], p), "for 2 classes"),
    (lambda p: plots.per_class_accuracy_png({"one clip": {"Frames": [0.5, 1.5]}}, ["a", "b"], p), r"\[0, 1\]"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(call, message, tmp_path):
    path = tmp_path / "out" / "figure.png"
    with pytest.raises(ValueError, match=message):
        call(path)
    assert not path.exists()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_fusion_png_at_the_real_layer_shape(rng, tmp_path):
    weight = rng.normal(size=(1024, 1536, 1, 1)).astype(np.float32)  # block-averaged heatmap
    path = tmp_path / "fusion.png"
    plots.fusion_weights_png(weight, path, n_spatial=SPATIAL_FEATURES)
    image = imread(path)
    assert image.shape[:2] == pytest.approx(SIZES["fusion"], rel=0.05)
    assert image[..., :3].var() > 0


def test_fusion_png_needs_the_stream_split(rng, tmp_path):
    """n_spatial has no default: the split between the streams comes from the model (models.SPATIAL_FEATURES)."""
    with pytest.raises(TypeError, match="n_spatial"):
        plots.fusion_weights_png(rng.normal(size=(4, 6)), tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_grid_videos_fit_the_classes():
    assert 0 < plots.GRID_VIDEOS <= NUM_CLASSES
    assert tuple(plots.SUBSET_COLOURS) == ("train", "val", "test")
