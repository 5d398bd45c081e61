"""Systems trained once per seed: mean and spread over seeds, and the Δ interval.

With ``--seeds "0 1 2"`` the recipe driver trains every student system once per seed, as
``exp/<system>_seed<N>`` (``exp/student_nokd_seed1``, ``exp/kd_mssp_dfkd_seed2``, ...; the folder
names are dispatch.results.layout's). RESULTS reports such a system as one row:

- each metric is the mean over seeds of the per-seed means (each over that seed's scored utterances);
- its spread is the sample standard deviation across seeds (``ddof=1``), shown as ``mean ± std``;
- its Δ against the no-KD student comes from :func:`seed_bootstrap`, a two-level paired bootstrap over
  seeds and utterances.

A system with a single run (no ``_seed<N>`` folder, or exactly one) is reported exactly as before:
its own means and the utterance-level :func:`dispatch.metrics.bootstrap.paired_bootstrap`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from dispatch.metrics.bootstrap import PairedDelta

Scores = Mapping[str, float]  # utt_id -> one metric's value


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean over seeds and the sample standard deviation across them (ddof 1; NaN for one value).

    Non-finite values (a seed whose scoring failed) are left out.
    """
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return math.nan, math.nan
    spread = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return float(finite.mean()), spread


def _drawn_utterance_means(runs: np.ndarray, utt: np.ndarray) -> np.ndarray:
    """Each run's mean over each replicate's drawn utterances.  runs: [K, N], utt: [R, N] -> [R, K]."""
    reps, n = utt.shape
    flat = (np.arange(reps)[:, None] * n + utt).ravel()  # [R * N]
    counts = np.bincount(flat, minlength=reps * n).reshape(reps, n).astype(np.float64)  # [R, N]
    return counts @ runs.T / n  # [R, K]


def combine_over_seeds(per_seed: Sequence[Mapping[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """``[{key: value} per seed]`` -> (mean over seeds, std across seeds) per key (:func:`mean_and_spread`)."""
    keys = sorted({k for d in per_seed for k in d})
    pairs = {k: mean_and_spread([d.get(k, math.nan) for d in per_seed]) for k in keys}
    return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}


def per_utt_over_seeds(per_seed: Sequence[Mapping[str, Mapping[str, float]]]
                       ) -> dict[str, dict[str, float]]:
    """``[{utt_id: {metric: value}} per seed]`` -> the mean over seeds for the utterances every seed has."""
    utts = sorted(set.intersection(*(set(p) for p in per_seed))) if per_seed else []
    return {u: combine_over_seeds([p[u] for p in per_seed])[0] for u in utts}


SEEDS_TEXT = ("Rows of systems trained on several seeds (`<system>_seed<N>` folders) show the mean "
              "over seeds of each seed's mean ± the sample standard deviation across seeds (ddof 1); "
              "their `utts` count every seed's scored utterances.")
DELTA_SEEDS_TEXT = (
    "Mean difference (KD − no-KD), with a 95 % two-level paired-bootstrap interval where a system "
    "has several seeds: each replicate resamples the seed pairs (KD seed i with no-KD seed i; "
    "where no seed matches, each side's seeds on their own), then resamples the utterances matched "
    "by id in every run, one draw shared by all the replicate's runs, and takes the mean difference "
    "(dispatch.metrics.seeds.seed_bootstrap); a single-run KD student against a single-run no-KD "
    "student uses the utterance-level paired bootstrap ({resamples} resamples, seed {seed}). "
    "`*`: the interval excludes 0.")


def pairs_note(deltas: Mapping[str, PairedDelta]) -> str:
    """`` × 3 seed pairs`` (or ``, 1 vs 3 seeds, unpaired``) for a Δ over seeds, else nothing."""
    d = next(iter(deltas.values()), None)
    if not isinstance(d, SeedDelta):
        return ""
    if d.paired:
        return f" × {d.seeds} seed pairs"
    return f", {d.seeds} vs {d.base_seeds} seeds, unpaired"


@dataclass
class SeedDelta(PairedDelta):
    """A :class:`PairedDelta` over seeds and utterances; ``n`` counts utterances.

    ``seeds`` and ``base_seeds`` count the runs used of the compared system and of the base. ``paired``
    is True when seed i of one was paired with seed i of the other (``seeds == base_seeds``), False
    when no seed matched and each side's runs were resampled on their own.
    """

    seeds: int = 1
    base_seeds: int = 1
    paired: bool = True


def seed_bootstrap(
    base: Mapping[Optional[int], Scores], other: Mapping[Optional[int], Scores],
    resamples: int = 2000, level: float = 0.95, seed: int = 0,
) -> SeedDelta:
    """Two-level percentile bootstrap of ``mean(other) - mean(base)`` over seeds and utterances.

    ``base``/``other``: ``{seed: {utt_id: value}}``, one entry per training run of each system.

    Utterances: those scored (finite) in every run of both systems, N of them.
    Seeds: the seeds both systems have, K of them, run ``other[s]`` paired with run ``base[s]``.
    When the two share no seed, every run is kept and each side's runs are resampled on their own.

    Point estimate: the mean over the K seed pairs of the mean over the N utterances of
    ``other[s][u] - base[s][u]`` (unpaired: the mean over ``other``'s runs minus the mean over ``base``'s).

    Each of the ``resamples`` bootstrap replicates, from ``numpy.random.default_rng(seed)``:
      1. draws K seed pairs with replacement (unpaired: each side draws its own runs with replacement);
      2. then draws N utterances with replacement, one draw shared by every run of the replicate,
         because every run was scored on the same test utterances;
      3. takes the mean difference over the drawn seeds and utterances.
    The interval is the ``(1-level)/2`` and ``(1+level)/2`` percentiles of the replicates.
    """
    if not base or not other:
        return SeedDelta(math.nan, math.nan, math.nan, 0, level, len(other), len(base), True)
    runs = list(base.values()) + list(other.values())
    common_seeds = sorted(s for s in set(base) & set(other) if s is not None)
    paired = bool(common_seeds)
    a_seeds = common_seeds if paired else list(base)
    b_seeds = common_seeds if paired else list(other)
    utts = sorted(set.intersection(*(set(r) for r in runs)))
    a = np.array([[base[s][u] for u in utts] for s in a_seeds], dtype=np.float64)  # [Ka, N]
    b = np.array([[other[s][u] for u in utts] for s in b_seeds], dtype=np.float64)  # [Kb, N]
    ok = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)  # [N]
    a, b = a[:, ok], b[:, ok]
    n = int(ok.sum())
    if n == 0:
        return SeedDelta(math.nan, math.nan, math.nan, 0, level, len(b_seeds), len(a_seeds), paired)
    rng = np.random.default_rng(seed)
    if paired:
        diff = b - a  # [K, N]
        pick = rng.integers(0, diff.shape[0], size=(resamples, diff.shape[0]))  # [R, K]
        utt = rng.integers(0, n, size=(resamples, n))  # [R, N]
        means = np.take_along_axis(_drawn_utterance_means(diff, utt), pick, axis=1).mean(axis=1)  # [R]
        point = float(diff.mean())
    else:
        pick_a = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))  # [R, Ka]
        pick_b = rng.integers(0, b.shape[0], size=(resamples, b.shape[0]))  # [R, Kb]
        utt = rng.integers(0, n, size=(resamples, n))  # [R, N]
        means = (np.take_along_axis(_drawn_utterance_means(b, utt), pick_b, axis=1).mean(axis=1)
                 - np.take_along_axis(_drawn_utterance_means(a, utt), pick_a, axis=1).mean(axis=1))  # [R]
        point = float(b.mean() - a.mean())
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return SeedDelta(point, float(low), float(high), n, level, len(b_seeds), len(a_seeds), paired)
