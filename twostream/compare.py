"""Two runs compared video by video: the logic of `twostream compare A B`.

Each revision (a commit, branch, tag, `dvc exp` name, or the workspace) is read through DVC's file
system (`dvc.api.DVCFileSystem`, which resolves experiment names to their commits): its per-video
prediction files (`twostream.predictions`) and its dvc.lock. Nothing runs again. For every model and
protocol both hold, on the same test videos: the accuracy of A and of B, the difference B - A with a
95% paired bootstrap interval over the test videos, and the exact McNemar p-value of the videos one
run gets right and the other wrong (`twostream.stats`). Runs on different test sets (another fold,
other data: the test videos or their classes differ, or dvc.lock records other raw data) are not
compared.
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from twostream.errors import InputError, MissingInputError
from twostream.predictions import DIRECTORY, describe, order, parse
from twostream.stats import ALPHA, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, mcnemar_exact, paired_bootstrap

WORKSPACE = "workspace"
RAW_DATA = "data/raw"  # the download stage's outputs, data/raw/<dataset>: the videos and images tested


@dataclass(frozen=True)
class Run:
    """One side of a comparison: its name (as the user gave it) and what it holds."""
    name: str
    predictions: dict[str, pd.DataFrame]   # file name -> rows (`predictions.parse`)
    raw_data: dict[str, str]               # dataset -> the hash dvc.lock records for data/raw/<dataset>


@dataclass(frozen=True)
class Row:
    label: str
    videos: int
    accuracy_a: float
    accuracy_b: float
    low: float
    high: float
    p_value: float

    @property
    def difference(self) -> float:
        return self.accuracy_b - self.accuracy_a

    @property
    def verdict(self) -> str:
        return "differs" if self.p_value < ALPHA else "within noise"


def repository_root(path: str | Path = ".") -> Path:
    """The DVC repository holding `path`."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Path(Repo.find_root(str(path)))
    except NotDvcRepoError:
        raise InputError(f"{Path(path).resolve()}: not inside a DVC repository; run twostream compare in the "
                         f"project's checkout (or pass --repo)") from None


def read_run(root: Path, rev: str | None) -> Run:
    """The prediction files and raw-data hashes of `rev` (None: the workspace) in the repository at `root`."""
    from dvc.api import DVCFileSystem
    from dvc.scm import SCMError

    name = rev or WORKSPACE
    fs = DVCFileSystem(str(root), rev=rev)
    try:
        try:
            names = [posixpath.basename(p) for p in fs.ls(str(DIRECTORY), detail=False)]
        except FileNotFoundError:
            names = []
        except SCMError as exc:  # dvc.scm.RevError: not a commit, branch, tag or experiment
            raise InputError(f"{name}: not a git revision, branch, tag or experiment of {root} ({exc}); "
                             f"see `git log`, `git branch`, `dvc exp list`") from None
        names = order(names)
        if not names:
            raise MissingInputError(f"{name}: no per-video predictions ({DIRECTORY}/*.csv); run `dvc repro` there "
                                    f"(the evaluate stage writes them), or compare revisions that have them")
        predictions = {}
        for file_name in names:
            source = f"{name}:{DIRECTORY / file_name}"
            predictions[file_name] = parse(fs.read_text(str(DIRECTORY / file_name)), source,
                                           describe(file_name).entry)
        try:
            lock = yaml.safe_load(fs.read_text("dvc.lock"))
        except FileNotFoundError:
            lock = None
    finally:
        fs.close()
    return Run(name, predictions, raw_data_hashes(lock))


def raw_data_hashes(lock) -> dict[str, str]:
    """dataset -> the hash dvc.lock records for the download stage's data/raw/<dataset> (none if unrecorded)."""
    outs = ((lock or {}).get("stages") or {}).get("download", {}).get("outs") or []
    hashes = {}
    for out in outs:
        path, digest = str(out.get("path", "")), out.get("md5") or out.get("hash")
        if posixpath.dirname(path) == RAW_DATA and digest:
            hashes[posixpath.basename(path)] = str(digest)
    return hashes


def paired(a: pd.DataFrame, b: pd.DataFrame, file_name: str, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-video correctness of A and of B on the same test videos, in A's order; an InputError
    when the two files do not list the same videos with the same classes."""
    only = set(a["path"]).symmetric_difference(b["path"])
    if only:
        raise InputError(f"{file_name}: {name_a} and {name_b} have different test sets ({len(a)} and {len(b)} "
                         f"videos, {len(only)} in only one, e.g. {sorted(only)[0]}); compare runs of the same "
                         f"fold and data")
    b = b.set_index("path").loc[a["path"]]
    relabelled = a["actual"].to_numpy() != b["actual"].to_numpy()
    if relabelled.any():
        first = int(np.argmax(relabelled))
        raise InputError(f"{file_name}: {name_a} and {name_b} have different test sets ({a['path'].iloc[first]} is "
                         f"{a['actual'].iloc[first]} in one, {b['actual'].iloc[first]} in the other); compare runs "
                         f"of the same data")
    return ((a["actual"] == a["predicted"]).to_numpy(),
            (b["actual"].to_numpy() == b["predicted"].to_numpy()))


def compare_runs(a: Run, b: Run, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> tuple[list[Row], list[str]]:
    """One Row per prediction file both runs hold (model table order), and the files only one holds."""
    shared = [n for n in a.predictions if n in b.predictions]
    if not shared:
        raise InputError(f"{a.name} and {b.name} share no prediction file ({', '.join(a.predictions)} vs "
                         f"{', '.join(b.predictions)}); compare runs of the same pipeline")
    for dataset in sorted({describe(n).entry.dataset for n in shared}):
        ha, hb = a.raw_data.get(dataset), b.raw_data.get(dataset)
        if ha and hb and ha != hb:
            raise InputError(f"dvc.lock: {a.name} and {b.name} test on different data ({RAW_DATA}/{dataset}: "
                             f"{ha} vs {hb}); compare runs made from the same data (same data params and seed)")
    rows = []
    for file_name in shared:
        right_a, right_b = paired(a.predictions[file_name], b.predictions[file_name], file_name, a.name, b.name)
        low, high = paired_bootstrap(right_a, right_b, resamples, seed)
        rows.append(Row(describe(file_name).label, len(right_a), float(right_a.mean()), float(right_b.mean()),
                        low, high, mcnemar_exact(right_a, right_b)))
    unpaired = [f"only in {run.name}: {n}" for run, other in ((a, b), (b, a)) for n in run.predictions
                if n not in other.predictions]
    return rows, unpaired


def format_table(rows: Iterable[Row], name_a: str, name_b: str, resamples: int = BOOTSTRAP_RESAMPLES,
                 seed: int = BOOTSTRAP_SEED) -> str:
    """The comparison as text: one line per model and protocol."""
    rows = list(rows)
    header = ("model (protocol)", "videos", "A", "B", "B - A", "95% interval", "McNemar p", "")
    cells = [(r.label, str(r.videos), f"{r.accuracy_a:.3f}", f"{r.accuracy_b:.3f}", f"{r.difference:+.3f}",
              f"[{r.low:+.3f}, {r.high:+.3f}]", f"{r.p_value:.3g}", r.verdict) for r in rows]
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]
    lines = [f"A: {name_a}   B: {name_b}   (same test videos; B - A with a 95% paired bootstrap interval, "
             f"{resamples:,} resamples, seed {seed}; exact McNemar test, 'differs' at p < {ALPHA})"]
    for line in (header, *cells):
        lines.append("  ".join(c.ljust(w) if i in (0, 7) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(line, widths))).rstrip())
    return "\n".join(lines) + "\n"
