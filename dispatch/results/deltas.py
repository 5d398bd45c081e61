"""Δ of a KD student against the no-KD student: paired-bootstrap intervals over utterances (and seeds).

Utterances are matched by id; a system with several seed runs goes through the two-level bootstrap
of dispatch.metrics.seeds (seed pairs, then utterances), a single run against a single run through
the utterance-level dispatch.metrics.bootstrap.paired_bootstrap.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from dispatch.metrics.bootstrap import PairedDelta, paired_bootstrap
from dispatch.metrics.seeds import seed_bootstrap
from dispatch.results.scores import SystemResult


def metric_runs(r: SystemResult, metric: str) -> dict[Optional[int], dict[str, float]]:
    """seed -> {utt_id: value of ``metric``} for each scored run of ``r``."""
    runs = r.seed_runs or ({} if r.per_utt is None else {(r.seeds or [None])[0]: r.per_utt})
    return {s: {u: v.get(metric, math.nan) for u, v in p.items()} for s, p in runs.items()}


def deltas_vs(base: SystemResult, other: SystemResult, metrics: Sequence[str], resamples: int,
              seed: int) -> dict[str, PairedDelta]:
    """Paired-bootstrap difference ``other - base`` per metric over common utterance ids (over
    seeds and utterances, ``seed_bootstrap``, when either system has several seed runs)."""
    out: dict[str, PairedDelta] = {}
    if base.seed_runs or other.seed_runs:
        for m in metrics:
            d = seed_bootstrap(metric_runs(base, m), metric_runs(other, m), resamples=resamples,
                               seed=seed)
            if d.n:
                out[m] = d
        return out
    if base.per_utt is None or other.per_utt is None:
        return out
    common = sorted(set(base.per_utt) & set(other.per_utt))
    for m in metrics:
        a = np.array([base.per_utt[u].get(m, math.nan) for u in common])  # [N]
        b = np.array([other.per_utt[u].get(m, math.nan) for u in common])  # [N]
        d = paired_bootstrap(a, b, resamples=resamples, seed=seed)
        if d.n:
            out[m] = d
    return out


def matched_utterances(base: SystemResult, other: SystemResult) -> int:
    """How many utterance ids the two systems' per-utterance scores share."""
    return len(set(base.per_utt or {}) & set(other.per_utt or {}))
