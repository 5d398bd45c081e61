"""Paired bootstrap confidence interval of a mean difference over utterances."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


#: Below this many matched utterances no interval is called significant: a percentile bootstrap
#: resamples only the few differences it has, so its interval is too narrow (with 2 utterances it
#: has at most 3 distinct means) and "excludes 0" would claim more than the data can show.
MIN_SIGNIFICANT_N = 10
SMALL_N_TEXT = ("Fewer than {n} matched utterances: the bootstrap interval is shown but not marked "
                "significant, because resampling so few differences gives intervals that are too "
                "narrow to trust.")


@dataclass
class PairedDelta:
    """Mean of ``b - a`` over matched utterances, with its bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int
    level: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 and rests on at least ``MIN_SIGNIFICANT_N`` pairs."""
        return self.n >= MIN_SIGNIFICANT_N and (self.low > 0.0 or self.high < 0.0)


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> PairedDelta:
    """Percentile bootstrap of ``mean(b - a)``.  a, b: [N] scores of the same utterances.

    Pairs with a NaN on either side are dropped.  The ``resamples`` resampled means use
    ``numpy.random.default_rng(seed)``, so the interval is reproducible.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores must have the same shape, got {a.shape} and {b.shape}")
    diff = (b - a)[np.isfinite(a) & np.isfinite(b)]  # [N']
    n = int(diff.size)
    if n == 0:
        return PairedDelta(math.nan, math.nan, math.nan, 0, level)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))  # [B, N']
    means = diff[idx].mean(axis=1)  # [B]
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return PairedDelta(float(diff.mean()), float(low), float(high), n, level)
