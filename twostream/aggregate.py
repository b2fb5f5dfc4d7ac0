"""Finished DVC experiments aggregated over seeds and HMDB51 folds: the logic of `twostream aggregate`.

Input: what `dvc exp show --json` prints (a list of baselines, each with its experiments), read through
DVC's Python API by the command. Experiments with the same params apart from `seed` and
`split.hmdb51_fold` form one group (one configuration); per group, per model and protocol, the test
accuracy's mean ± standard deviation over seeds (sample std, ddof 1) in each fold, and, when folds
1-3 are all there, the HMDB51 protocol: the mean over the three folds of the per-fold means (± their
std). Queued, running and failed experiments are left out.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twostream.errors import InputError
from twostream.model_table import MODELS, VIDEO_MODELS

SEED = "seed"
FOLD = "split.hmdb51_fold"
FOLDS = (1, 2, 3)  # HMDB51's official train/test folds
PARAMS_FILE = "params.yaml"
ACCURACY_FILE = "metrics/accuracy.json"
FINISHED = ("success", None)  # executor state of a finished experiment (None: loaded from its git ref)


@dataclass(frozen=True)
class Experiment:
    name: str
    params: dict[str, Any]       # flattened (dotted keys) params.yaml
    accuracy: dict[str, float]   # figure (model, or video_accuracy.<model>) -> test accuracy

    @property
    def seed(self) -> Any:
        return self.params.get(SEED)

    @property
    def fold(self) -> Any:
        return self.params.get(FOLD)


@dataclass
class Group:
    """Experiments that differ only in seed and fold; `differs` says how the group's params differ from
    the baseline's (dotted key -> value)."""
    differs: dict[str, Any]
    runs: dict[Any, dict[Any, Experiment]] = field(default_factory=dict)  # fold -> seed -> experiment


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        out = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def _data(entry: Mapping[str, Any], kind: str, file: str) -> dict[str, Any] | None:
    node = ((entry.get("data") or {}).get(kind) or {}).get(file) or {}
    return node.get("data") if isinstance(node.get("data"), dict) else None


def finished_experiments(shown: Iterable[Mapping[str, Any]]) -> tuple[list[Experiment], dict[str, Any], list[str]]:
    """The finished experiments of `dvc exp show --json` output, the params of their baseline (the first
    baseline commit listed) and a note for every experiment left out."""
    experiments, notes, baseline = [], [], None
    for commit in shown:
        if commit.get("rev") == "workspace":
            continue
        if baseline is None:
            baseline = flatten(_data(commit, "params", PARAMS_FILE) or {})
        for exp_range in commit.get("experiments") or []:
            revs = exp_range.get("revs") or []
            if not revs:
                continue
            entry = revs[0]
            name = exp_range.get("name") or entry.get("name") or str(entry.get("rev", ""))[:7]
            state = (exp_range.get("executor") or {}).get("state")
            if state not in FINISHED:
                notes.append(f"left out {name}: {state}")
                continue
            params, accuracy = _data(entry, "params", PARAMS_FILE), _data(entry, "metrics", ACCURACY_FILE)
            if entry.get("error") or params is None or accuracy is None:
                notes.append(f"left out {name}: no {ACCURACY_FILE} (failed, or made before evaluate wrote it)")
                continue
            figures = {k: float(v) for k, v in flatten(accuracy).items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            experiments.append(Experiment(name, flatten(params), figures))
    return experiments, baseline or {}, notes


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _order(value: Any) -> tuple:
    """Seeds and folds in numeric order (2 before 10), anything else after them as text."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return (0, value, "") if number else (1, 0, _key(value))


def group_experiments(experiments: Iterable[Experiment], baseline: Mapping[str, Any]) -> tuple[list[Group], list[str]]:
    """Groups of experiments with the same params apart from seed and fold, in the order first met;
    a seed run twice in one fold and group counts once (the newest, listed first), with a note."""
    groups: dict[str, Group] = {}
    notes = []
    for exp in experiments:
        rest = {k: v for k, v in exp.params.items() if k not in (SEED, FOLD)}
        key = _key(rest)
        if key not in groups:
            differs = {k: v for k, v in rest.items() if _key(baseline.get(k)) != _key(v)}
            differs.update({f"{k} (removed)": v for k, v in baseline.items()
                            if k not in rest and k not in (SEED, FOLD)})
            groups[key] = Group(differs)
        seeds = groups[key].runs.setdefault(exp.fold, {})
        if exp.seed in seeds:
            notes.append(f"left out {exp.name}: the same params as {seeds[exp.seed].name}")
            continue
        seeds[exp.seed] = exp
    return list(groups.values()), notes


def figures() -> list[tuple[str, str]]:
    """(figure key in accuracy.json, row label) of every model and protocol, in the model table's order."""
    rows = []
    for m in MODELS:
        rows.append((m.name, f"{m.label} (one clip)" if m in VIDEO_MODELS else m.label))
        if m in VIDEO_MODELS:
            rows.append((f"video_accuracy.{m.name}", f"{m.label} (video)"))
    return rows


def mean_std(values: Iterable[float]) -> tuple[float, float | None, int]:
    """Mean, sample standard deviation (None for one value) and count."""
    values = np.asarray(list(values), dtype=float)
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else None), len(values)


def _cell(stats: tuple[float, float | None, int] | None) -> str:
    if stats is None:
        return "–"
    mean, std, n = stats
    return f"{mean:.3f} ± {std:.3f} ({n})" if std is not None else f"{mean:.3f} ({n})"


def group_table(group: Group) -> list[list[str]]:
    """The rows of one group's table: header, then one row per model and protocol."""
    folds = sorted(group.runs, key=_order)
    protocol = all(f in group.runs for f in FOLDS)
    header = ["model (protocol)"] + [f"fold {f}: mean ± std (seeds)" for f in folds]
    header += ["folds 1-3: mean ± std of the fold means"] if protocol else []
    rows = [header]
    for key, label in figures():
        per_fold = {}
        for fold in folds:
            values = [e.accuracy[key] for e in group.runs[fold].values() if key in e.accuracy]
            per_fold[fold] = mean_std(values) if values else None
        if all(s is None for s in per_fold.values()):
            continue
        row = [label] + [_cell(per_fold[f]) for f in folds]
        if protocol:
            means = [per_fold[f][0] for f in FOLDS if per_fold[f] is not None]
            row.append(_cell(mean_std(means)) if len(means) == len(FOLDS) else "–")
        rows.append(row)
    return rows


def format_group(group: Group) -> str:
    rows = group_table(group)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    seeds = sorted({s for runs in group.runs.values() for s in runs}, key=_order)
    title = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(group.differs.items())) or "the baseline's params"
    lines = [f"{title}  (seeds {', '.join(map(str, seeds))}; folds {', '.join(map(str, sorted(group.runs, key=_order)))})"]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
              for r in rows]
    return "\n".join(lines) + "\n"


def aggregate(shown: Iterable[Mapping[str, Any]], where: str = "HEAD") -> tuple[str, list[str]]:
    """The aggregate text of `dvc exp show --json` output, and notes on the experiments left out."""
    experiments, baseline, notes = finished_experiments(shown)
    if not experiments:
        reason = f" ({'; '.join(notes)})" if notes else ""
        raise InputError(f"no finished experiments of {where}{reason}; queue some with "
                         f"`dvc exp run --queue -S seed=0,1,2`, run them with `dvc queue start`, and wait for "
                         f"`dvc queue status` (see docs/comparing.md)")
    groups, more = group_experiments(experiments, baseline)
    return "\n".join(format_group(g) for g in groups), notes + more
