"""Uncertainty of test figures: exact binomial intervals, a paired bootstrap and an exact McNemar test.

A test accuracy is k right answers out of n test videos (or images). Its 95% interval is the exact
Clopper-Pearson binomial interval: deterministic (no resampling, no seed) and never narrower than
the nominal level, also near 0 and 1 where the normal approximation fails. Two runs scored on the
same test videos are compared pairwise: the difference of their accuracies with a paired bootstrap
interval over the videos (a fixed seed, so the same inputs give the same interval), and McNemar's
exact test on the videos one run gets right and the other wrong.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

CONFIDENCE = 0.95        # every interval the project reports
ALPHA = 0.05             # a paired difference "differs" below this McNemar p-value
BOOTSTRAP_RESAMPLES = 10_000  # resamples of the test videos
BOOTSTRAP_SEED = 0       # numpy.random.default_rng seed of the paired bootstrap


def accuracy_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of an accuracy of `correct` right answers out of `total`."""
    if total < 1 or not 0 <= correct <= total:
        raise ValueError(f"an accuracy needs 0 <= correct <= total and total >= 1, got {correct}/{total}")
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def _pair(a_right: np.ndarray, b_right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a_right, dtype=bool), np.asarray(b_right, dtype=bool)
    if a.ndim != 1 or a.shape != b.shape or not len(a):
        raise ValueError(f"paired comparison needs two equal-length 1-D vectors, got {a.shape} and {b.shape}")
    return a, b


def mcnemar_exact(a_right: np.ndarray, b_right: np.ndarray) -> float:
    """Two-sided exact McNemar p-value: a binomial test (p = 1/2) of the discordant videos
    (right in one run only); 1.0 when there are none."""
    a, b = _pair(a_right, b_right)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_b, only_a + only_b, 0.5, alternative="two-sided").pvalue)


def paired_bootstrap(a_right: np.ndarray, b_right: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of accuracy(B) - accuracy(A), resampling the test videos with replacement
    (the same draw for both runs: the pairing keeps the videos' shared difficulty out of the noise)."""
    a, b = _pair(a_right, b_right)
    difference = b.astype(np.int8) - a.astype(np.int8)  # per video: +1 only B right, -1 only A right
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // len(difference))  # bounded memory: resamples x videos indices per chunk
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        means[start:start + rows] = difference[rng.integers(0, len(difference), size=(rows, len(difference)))].mean(1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
