"""The one rule for the best KD student, used by RESULTS.md's scatter plot and by stage 10's packing.

The best KD student is the KD system with the highest mean ``metric`` (PESQ_WB unless asked
otherwise); when no KD system has that metric (e.g. PESQ_WB at a rate other than 16 kHz), the one
with the highest mean SI_SNR. Non-finite means count as missing; a tie goes to the first name in
sorted order. Only trusted scores take part (dispatch.results.scores leaves the others out).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from dispatch.results.layout import ExperimentLayout
from dispatch.results.scores import mean_over_test_sets

BEST_METRIC = "PESQ_WB"
FALLBACK_METRIC = "SI_SNR"


@dataclass(frozen=True)
class BestKD:
    """The pick: which system, by which metric, with what mean."""

    system: str
    metric: str
    score: float


def best_kd(means: Mapping[str, Mapping[str, float]], metric: str = BEST_METRIC
            ) -> Optional[BestKD]:
    """THE rule: ``{kd system: {metric: mean}}`` -> the best KD student, or None if none is scored."""
    for key in dict.fromkeys((metric, FALLBACK_METRIC)):
        scored = {name: m[key] for name, m in sorted(means.items())
                  if math.isfinite(m.get(key, math.nan))}
        if scored:
            name = max(scored, key=scored.get)
            return BestKD(name, key, scored[name])
    return None


def best_kd_run(layout: ExperimentLayout, test_sets: Sequence[str], metric: str = BEST_METRIC
                ) -> Optional[BestKD]:
    """The best KD run folder to deploy: :func:`best_kd` over every ``kd_*`` run folder (each seed
    run on its own: a run is what gets packed), by its mean over ``test_sets``."""
    return best_kd({f: mean_over_test_sets(layout.run(f), test_sets) for f in layout.kd_folders()},
                   metric)
