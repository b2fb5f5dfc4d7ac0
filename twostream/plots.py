"""PNG figures people read: confusion matrices, training curves, frame positions,
the fusion layer's weights, the frame-position study and the test accuracy per class;
`evaluation_figures` draws all of them for the evaluate stage.

Every figure is drawn on a standalone ``Figure`` with the Agg canvas (no pyplot, no
global backend switch) and written through ``atomic_path``, so a failed render never
leaves a PNG that looks complete. Inputs are checked before drawing; a bad shape or a
missing key is a ``ValueError`` that names the problem.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from twostream.data import arrays
from twostream.data.manifests import manifest_name, read_manifest
from twostream.io import atomic_path, load_array
from twostream.model_table import BY_NAME, VIDEO_MODELS
from twostream.params import FRAME_POSITIONS, SUBSETS
from twostream.report import confusion_name, per_class_accuracy

DPI = 120
HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy")
GRID_VIDEOS = 6  # test clips in the frame-position figure: one per class, spread over the 12 classes
SUBSET_COLOURS = {"train": "tab:blue", "val": "tab:orange", "test": "tab:green"}
SPATIAL_COLOUR = "tab:blue"
TEMPORAL_COLOUR = "tab:red"
MAX_HEATMAP_CELLS = 384  # per axis; larger weight matrices are block-averaged down


# --------------------------------------------------------------------------- helpers

def row_normalise(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum, so rows sum to 1; all-zero rows stay zero (no NaN)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"row_normalise: expected a 2-D matrix, got shape {matrix.shape}")
    totals = matrix.sum(axis=1, keepdims=True)
    out = np.zeros_like(matrix)
    np.divide(matrix, totals, out=out, where=totals != 0)
    return out


def _fusion_matrix(weight: np.ndarray, n_spatial: int) -> np.ndarray:
    """The (outputs, inputs) matrix of a 1x1 conv weight, checked against `n_spatial`."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim == 4 and weight.shape[2:] == (1, 1):
        weight = weight[:, :, 0, 0]
    if weight.ndim != 2:
        raise ValueError(f"fusion weight: expected shape (out, in) or (out, in, 1, 1), "
                         f"got {weight.shape}")
    if not 0 < n_spatial < weight.shape[1]:
        raise ValueError(f"fusion weight: n_spatial={n_spatial} must split the "
                         f"{weight.shape[1]} input channels into two non-empty streams")
    if not np.all(np.isfinite(weight)):
        raise ValueError("fusion weight: contains NaN or infinite values")
    return weight


def stream_shares(weight: np.ndarray, n_spatial: int) -> tuple[float, float]:
    """(spatial, temporal) shares of the total squared weight; they sum to 1.

    Input channels [0, n_spatial) come from the spatial stream, the rest from the
    temporal stream.
    """
    weight = _fusion_matrix(weight, n_spatial)
    squared = weight ** 2
    total = float(squared.sum())
    if total == 0.0:
        raise ValueError("fusion weight: all zero, so stream shares are undefined")
    spatial = float(squared[:, :n_spatial].sum()) / total
    return spatial, 1.0 - spatial


def _block_mean(matrix: np.ndarray, max_cells: int) -> np.ndarray:
    """Average blocks of rows/columns so neither axis exceeds `max_cells` (uneven tail ok)."""
    for axis in (0, 1):
        n = matrix.shape[axis]
        block = math.ceil(n / max_cells)
        if block > 1:
            starts = np.arange(0, n, block)
            counts = np.diff(np.append(starts, n))
            sums = np.add.reduceat(matrix, starts, axis=axis)
            shape = [1, 1]
            shape[axis] = len(counts)
            matrix = sums / counts.reshape(shape)
    return matrix


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    """Render `fig` to `path` atomically (temp sibling, then rename)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)


# --------------------------------------------------------------------------- figures

def confusion_png(matrix: np.ndarray, classes: Sequence[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (rows actual, columns predicted), cells show
    the normalised value and the raw count; overall accuracy goes in the title."""
    counts = np.asarray(matrix)
    classes = [str(c) for c in classes]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix: expected a square 2-D matrix, got shape {counts.shape}")
    if counts.shape[0] != len(classes):
        raise ValueError(f"confusion matrix: {counts.shape[0]} rows but {len(classes)} class names")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("confusion matrix: counts must be finite and non-negative")

    normalised = row_normalise(counts)
    total = counts.sum()
    accuracy = f"{np.trace(counts) / total:.1%}" if total > 0 else "n/a"
    n = len(classes)
    integral = np.all(np.equal(np.mod(counts, 1), 0))

    fig = _new_figure(8, 7)
    ax = fig.add_subplot()
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="fraction of actual class")
    fontsize = 7 if n > 8 else 9
    for i in range(n):
        for j in range(n):
            if counts[i, j] == 0:
                continue
            raw = f"{int(counts[i, j])}" if integral else f"{counts[i, j]:.3g}"
            colour = "white" if normalised[i, j] > 0.5 else "black"
            ax.text(j, i, f"{normalised[i, j]:.2f}\n{raw}", ha="center", va="center",
                    fontsize=fontsize, color=colour, linespacing=1.1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    ax.set_title(f"{title} — accuracy {accuracy} (n={int(total) if integral else total:g})")
    _save(fig, path)


def curves_png(history: Sequence[Mapping], path: Path, title: str, best_epoch: int) -> None:
    """Accuracy, loss and learning rate per epoch, side by side, best epoch marked."""
    if len(history) == 0:
        raise ValueError("training history is empty")
    for index, row in enumerate(history):
        missing = [k for k in HISTORY_KEYS if k not in row]
        if missing:
            raise ValueError(f"training history entry {index} lacks key(s) {', '.join(missing)}")
    series = {k: np.array([float(row[k]) for row in history]) for k in HISTORY_KEYS}
    epochs = series["epoch"]

    fig = _new_figure(15, 4.6)
    axes = fig.subplots(1, 3)
    panels = (
        (axes[0], "accuracy", ("train_accuracy", "val_accuracy")),
        (axes[1], "loss", ("train_loss", "val_loss")),
        (axes[2], "learning rate", ("lr",)),
    )
    marker = "o" if len(epochs) <= 30 else None
    for ax, label, keys in panels:
        for key in keys:
            name = {"lr": "learning rate"}.get(key, key.split("_")[0])
            ax.plot(epochs, series[key], marker=marker, markersize=3, label=name)
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1.2, label="best")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=9)
    axes[0].set_ylim(0.0, 1.02)
    if np.all(series["lr"] > 0):
        axes[2].set_yscale("log")
    for ax in axes:
        ymin, ymax = ax.get_ylim()
        text_y = ymin * (ymax / ymin) ** 0.97 if ax.get_yscale() == "log" else ymin + 0.97 * (ymax - ymin)
        ax.text(best_epoch, text_y, " best", color="grey", ha="left", va="top", fontsize=9)
    fig.suptitle(f"{title} — best epoch {best_epoch}")
    _save(fig, path)


def frame_positions_png(frames: np.ndarray, titles: Sequence[str], positions: Sequence[str],
                        path: Path) -> None:
    """A grid of frames: one row per video (titled), one column per frame position."""
    frames = np.asarray(frames)
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"frames: expected shape (videos, positions, S, S, 3), got {frames.shape}")
    n_videos, n_positions = frames.shape[:2]
    if n_videos == 0:
        raise ValueError("frames: no videos to show")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames: expected dtype uint8, got {frames.dtype}")
    if len(titles) != n_videos:
        raise ValueError(f"frames: {n_videos} videos but {len(titles)} row titles")
    if len(positions) != n_positions:
        raise ValueError(f"frames: {n_positions} frame positions but {len(positions)} column headers")

    fig = _new_figure(2.2 * n_positions, 2.45 * n_videos + 0.3)
    rows = np.atleast_1d(fig.subfigures(n_videos, 1))
    for v, (row, title) in enumerate(zip(rows, titles, strict=True)):
        row.suptitle(str(title), fontsize=11, fontweight="bold")
        axes = np.atleast_1d(row.subplots(1, n_positions))
        for p, ax in enumerate(axes):
            ax.imshow(frames[v, p])
            ax.set_xticks([])
            ax.set_yticks([])
            if v == 0:
                ax.set_title(str(positions[p]), fontsize=10)
    _save(fig, path)


def fusion_weights_png(weight: np.ndarray, path: Path, n_spatial: int) -> None:
    """|W| of the fusion 1x1 conv as a heatmap, and each input channel's L2 norm over
    outputs coloured by stream; the title gives each stream's share of squared weight.
    The first `n_spatial` input channels come from the spatial stream (models.SPATIAL_FEATURES)."""
    weight = _fusion_matrix(weight, n_spatial)
    spatial_share, temporal_share = stream_shares(weight, n_spatial)
    n_out, n_in = weight.shape
    magnitude = _block_mean(np.abs(weight), MAX_HEATMAP_CELLS)
    channel_norm = np.sqrt((weight ** 2).sum(axis=0))

    fig = _new_figure(13, 5.2)
    heat_ax, norm_ax = fig.subplots(1, 2, width_ratios=(1.15, 1))
    image = heat_ax.imshow(magnitude, cmap="magma", aspect="auto", interpolation="nearest",
                           extent=(0, n_in, n_out, 0))
    fig.colorbar(image, ax=heat_ax, pad=0.02, label="|weight|")
    heat_ax.axvline(n_spatial, color="cyan", linewidth=1.5)
    heat_ax.text(n_spatial / 2, -0.01 * n_out, "spatial", ha="center", va="bottom",
                 color=SPATIAL_COLOUR, fontweight="bold")
    heat_ax.text((n_spatial + n_in) / 2, -0.01 * n_out, "temporal", ha="center", va="bottom",
                 color=TEMPORAL_COLOUR, fontweight="bold")
    heat_ax.set_xlabel("input channel")
    heat_ax.set_ylabel("output channel")
    heat_ax.set_title("|W| (block-averaged)" if magnitude.shape != weight.shape else "|W|", pad=18)

    channels = np.arange(n_in)
    for name, span, colour in (("spatial", slice(0, n_spatial), SPATIAL_COLOUR),
                               ("temporal", slice(n_spatial, n_in), TEMPORAL_COLOUR)):
        x, y = channels[span], channel_norm[span]
        norm_ax.fill_between(x, 0, y, color=colour, alpha=0.35, linewidth=0, step="mid")
        norm_ax.plot(x, y, color=colour, linewidth=0.6, drawstyle="steps-mid",
                     label=f"{name} (mean {y.mean():.3g})")
        norm_ax.hlines(y.mean(), x[0], x[-1], color=colour, linestyle="--", linewidth=1.2)
    norm_ax.axvline(n_spatial, color="grey", linewidth=1)
    norm_ax.set_xlim(0, n_in)
    norm_ax.set_ylim(bottom=0)
    norm_ax.set_xlabel("input channel")
    norm_ax.set_ylabel("L2 norm over output channels")
    norm_ax.set_title("how much each input channel feeds the fusion", pad=18)
    norm_ax.legend(loc="upper right", fontsize=9)
    norm_ax.grid(alpha=0.3)

    fig.suptitle(f"Fusion 1x1 conv ({n_out}x{n_in}): squared weight "
                 f"spatial {spatial_share:.0%} / temporal {temporal_share:.0%} "
                 f"(channels {n_spatial / n_in:.0%} / {1 - n_spatial / n_in:.0%})")
    _save(fig, path)


def position_study_png(table: Mapping[str, Mapping[str, float]], path: Path) -> None:
    """Accuracy per frame position for train/val/test, as grouped bars with values."""
    if len(table) == 0:
        raise ValueError("position study: table is empty")
    positions = list(table)
    values = np.zeros((len(positions), len(SUBSETS)))
    for i, position in enumerate(positions):
        row = table[position]
        missing = [s for s in SUBSETS if s not in row]
        if missing:
            raise ValueError(f"position study: position {position!r} lacks subset(s) {', '.join(missing)}")
        for j, split in enumerate(SUBSETS):
            value = float(row[split])
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"position study: {position!r} {split} accuracy {value} is outside [0, 1]")
            values[i, j] = value

    fig = _new_figure(max(7.0, 1.6 * len(positions) + 2), 4.8)
    ax = fig.add_subplot()
    x = np.arange(len(positions))
    width = 0.8 / len(SUBSETS)
    for j, split in enumerate(SUBSETS):
        bars = ax.bar(x + (j - (len(SUBSETS) - 1) / 2) * width, values[:, j], width,
                      color=SUBSET_COLOURS[split], label=split)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in values[:, j]], fontsize=8, padding=2)
    ax.set_xticks(x, positions)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("frame position")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy by frame position")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)


def per_class_accuracy_png(panels: Mapping[str, Mapping[str, Sequence[float]]], classes: Sequence[str],
                           path: Path) -> None:
    """Test accuracy per class, the models side by side as grouped bars, one panel per protocol
    (e.g. one clip per video, the whole video). `panels`: title -> model label -> accuracy per class
    (NaN: no test sample of that class, drawn as no bar)."""
    if len(panels) == 0:
        raise ValueError("per-class accuracy: no panels")
    classes = [str(c) for c in classes]
    for title, models in panels.items():
        if len(models) == 0:
            raise ValueError(f"per-class accuracy: panel {title!r} has no models")
        for label, values in models.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (len(classes),):
                raise ValueError(f"per-class accuracy: {label!r} in {title!r} has {values.shape} values for "
                                 f"{len(classes)} classes")
            finite = values[np.isfinite(values)]
            if np.any((finite < 0) | (finite > 1)):
                raise ValueError(f"per-class accuracy: {label!r} in {title!r} has values outside [0, 1]")

    fig = _new_figure(max(10.0, 1.0 * len(classes) + 2), 3.6 * len(panels) + 0.4)
    axes = np.atleast_1d(fig.subplots(len(panels), 1, sharex=True))
    x = np.arange(len(classes))
    for ax, (title, models) in zip(axes, panels.items()):
        width = 0.8 / len(models)
        for j, (label, values) in enumerate(models.items()):
            values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
            ax.bar(x + (j - (len(models) - 1) / 2) * width, values, width, color=f"C{j}", label=label)
        ax.set_ylim(0.0, 1.0)
        ax.set_ylabel("test accuracy")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9)
    axes[-1].set_xticks(x, classes, rotation=30, ha="right", rotation_mode="anchor")
    axes[-1].set_xlabel("class")
    fig.suptitle("Test accuracy per class")
    _save(fig, path)


# --------------------------------------------------------------------------- the evaluate stage's figures

def frame_position_grid(frames_dir: Path, path: Path) -> None:
    """The five study frames of a few test clips (sample_frames' output), one per class spread over the classes."""
    manifest = read_manifest(Path(frames_dir) / manifest_name("hmdb51", "test"), "hmdb51")
    positions = load_array(Path(frames_dir) / arrays.positions("test"))
    first_of_class = manifest.groupby("label").head(1).index.to_numpy()
    chosen = first_of_class[np.linspace(0, len(first_of_class) - 1, GRID_VIDEOS, dtype=int)]
    titles = [f"{manifest['class'][i]}: {Path(manifest['path'][i]).stem[:40]}" for i in chosen]
    frame_positions_png(np.asarray(positions[chosen]), titles, FRAME_POSITIONS, path)


def evaluation_figures(plot_dir: Path, confusions: Mapping, checkpoints: Mapping[str, Mapping],
                       fusion_weight: np.ndarray, n_spatial: int, positions: Mapping[str, Mapping],
                       clips: int, frames_dir: Path) -> None:
    """Every figure of the evaluate stage under `plot_dir`: confusion/<name>.png of each `evaluate.Confusion`,
    curves/<model>.png of each trained model's checkpoint, fusion_weights.png (the two-stream fusion layer's
    weight, `n_spatial` spatial features first), per_class_accuracy.png (HMDB51, one clip and `clips` clips per
    video), frame_positions_accuracy.png (position -> metrics record) and frame_positions.png."""
    plot_dir = Path(plot_dir)
    for name, table in confusions.items():
        confusion_png(table.matrix, table.entry.classes, plot_dir / "confusion" / f"{name}.png", table.title)
    for name, checkpoint in checkpoints.items():
        curves_png(checkpoint["history"], plot_dir / "curves" / f"{name}.png", BY_NAME[name].label,
                   checkpoint["best_epoch"])
    fusion_weights_png(fusion_weight, plot_dir / "fusion_weights.png", n_spatial=n_spatial)
    classes, title = VIDEO_MODELS[0].classes, VIDEO_MODELS[0].dataset_title
    per_class_accuracy_png(
        {panel: {m.title: per_class_accuracy(confusions[confusion_name(m.name, is_video)].rows, classes)
                 for m in VIDEO_MODELS}
         for panel, is_video in ((f"{title}, one clip per test video", False),
                                 (f"{title}, {clips} clips per test video (mean softmax)", True))},
        classes, plot_dir / "per_class_accuracy.png")
    position_study_png({p: {s: r[s]["accuracy"] for s in ("train", "val", "test")} for p, r in positions.items()},
                       plot_dir / "frame_positions_accuracy.png")
    frame_position_grid(frames_dir, plot_dir / "frame_positions.png")
