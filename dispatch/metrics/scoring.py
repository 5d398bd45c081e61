"""Score one utterance: load, check, and compute every metric, never raising.

The checks name the reason an utterance cannot be scored (missing entry, unreadable or missing
file, sample-rate mismatch, length mismatch, non-finite samples, silent reference).  A metric that
fails on an otherwise good utterance (e.g. PESQ finding no speech) is NaN, and its reason is kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dispatch.metrics.audio import AudioError, load_audio
from dispatch.metrics.composite import composite, nb_mos_lqo_to_raw
from dispatch.metrics.intrusive import estoi, pesq_nb, pesq_wb, sdr, si_snr, stoi

INTRUSIVE_KEYS = ("PESQ_WB", "PESQ_NB", "STOI", "ESTOI", "SI_SNR", "SDR")
COMPOSITE_KEYS = ("CSIG", "CBAK", "COVL")
METRIC_KEYS = INTRUSIVE_KEYS + COMPOSITE_KEYS
SILENCE_PEAK = 1e-8  # a reference whose peak |x| is below this is "silent"

_INTRUSIVE: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "PESQ_WB": pesq_wb,
    "PESQ_NB": pesq_nb,
    "STOI": stoi,
    "ESTOI": estoi,
    "SI_SNR": si_snr,
    "SDR": sdr,
}


@dataclass
class ScoringPlan:
    """Which metrics run at a sample rate, and the one-line notes about those that do not."""

    fs: int
    metrics: tuple[str, ...]
    composite_pesq: str | None  # "wb", "nb_raw", or None when composite is off
    notes: list[str] = field(default_factory=list)


def plan_for(fs: int, composite_pesq: str = "wb") -> ScoringPlan:
    """Decide the metric set for sample rate ``fs`` (PESQ WB: 16 kHz only; NB: 8 or 16 kHz)."""
    notes: list[str] = []
    metrics = list(METRIC_KEYS)
    if fs != 16000:
        metrics.remove("PESQ_WB")
        notes.append(f"PESQ_WB skipped: wide-band PESQ requires 16000 Hz, data is {fs} Hz")
    if fs not in (8000, 16000):
        metrics.remove("PESQ_NB")
        notes.append(f"PESQ_NB skipped: narrow-band PESQ requires 8000 or 16000 Hz, data is {fs} Hz")
    mode: str | None = composite_pesq
    if composite_pesq == "wb" and fs == 8000:
        mode = "nb_raw"
        notes.append("CSIG/CBAK/COVL use raw P.862 PESQ at 8000 Hz (wide-band PESQ needs 16 kHz)")
    if fs not in (8000, 16000):
        mode = None
        notes.append(f"CSIG/CBAK/COVL skipped: they need PESQ, i.e. 8000 or 16000 Hz, data is {fs} Hz")
    if mode is None:
        metrics = [m for m in metrics if m not in COMPOSITE_KEYS]
    return ScoringPlan(fs=fs, metrics=tuple(metrics), composite_pesq=mode, notes=notes)


@dataclass
class UttResult:
    """Scores of one utterance; ``error`` is empty when it was scored (``metric_errors`` may not be)."""

    utt_id: str
    scores: dict[str, float]
    error: str = ""
    metric_errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.error

    def reason(self) -> str:
        """One line: the file-level error, or the metric failures."""
        return self.error or "; ".join(self.metric_errors)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_pair(
    ref: np.ndarray, ref_fs: int, est: np.ndarray, est_fs: int, expected_fs: int | None
) -> str:
    """Reason why the pair cannot be scored, or '' when it can."""
    if ref_fs != est_fs:
        return f"sample rate mismatch: reference {ref_fs} Hz, estimate {est_fs} Hz"
    if expected_fs is not None and ref_fs != expected_fs:
        return f"sample rate {ref_fs} Hz, expected {expected_fs} Hz (--fs)"
    if len(ref) != len(est):
        return f"length mismatch: reference {len(ref)} samples, estimate {len(est)} samples"
    if not np.all(np.isfinite(ref)):
        return "reference has non-finite samples"
    if not np.all(np.isfinite(est)):
        return "estimate has non-finite samples"
    if float(np.max(np.abs(ref))) < SILENCE_PEAK:
        return "silent reference (all samples zero)"
    return ""


def score_arrays(
    ref: np.ndarray,
    est: np.ndarray,
    plan: ScoringPlan,
    dnsmos: Callable[[np.ndarray, int], dict[str, float]] | None = None,
) -> tuple[dict[str, float], list[str]]:
    """All planned metrics for one checked pair.  ref, est: [L].  Returns (scores, failures)."""
    scores: dict[str, float] = {}
    failures: list[str] = []
    for key in plan.metrics:
        if key in _INTRUSIVE:
            try:
                scores[key] = _INTRUSIVE[key](ref, est, plan.fs)
            except Exception as exc:  # one metric failing must not lose the others
                scores[key] = math.nan
                failures.append(f"{key}: {_one_line(exc)}")
    if plan.composite_pesq is not None:
        pesq_value = None
        if plan.composite_pesq == "wb" and math.isfinite(scores.get("PESQ_WB", math.nan)):
            pesq_value = scores["PESQ_WB"]
        elif plan.composite_pesq == "nb_raw" and math.isfinite(scores.get("PESQ_NB", math.nan)):
            pesq_value = nb_mos_lqo_to_raw(scores["PESQ_NB"])
        try:
            comp = composite(ref, est, plan.fs, pesq_score=pesq_value, pesq_mode=plan.composite_pesq)
            scores.update(CSIG=comp.CSIG, CBAK=comp.CBAK, COVL=comp.COVL)
        except Exception as exc:
            scores.update(CSIG=math.nan, CBAK=math.nan, COVL=math.nan)
            failures.append(f"CSIG/CBAK/COVL: {_one_line(exc)}")
    if dnsmos is not None:
        try:
            scores.update(dnsmos(est, plan.fs))
        except Exception as exc:
            failures.append(f"DNSMOS: {_one_line(exc)}")
    return scores, failures


def score_utterance(
    utt_id: str,
    ref_location: str | None,
    est_location: str | None,
    plan: ScoringPlan,
    expected_fs: int | None = None,
    dnsmos: Callable[[np.ndarray, int], dict[str, float]] | None = None,
) -> UttResult:
    """Load, check and score one utterance; every failure becomes ``UttResult.error``."""
    if ref_location is None:
        return UttResult(utt_id, {}, "missing from ref_scp")
    if est_location is None:
        return UttResult(utt_id, {}, "missing from inf_scp")
    try:
        try:
            ref, ref_fs = load_audio(ref_location)
        except AudioError as exc:
            return UttResult(utt_id, {}, f"reference: {exc}")
        try:
            est, est_fs = load_audio(est_location)
        except AudioError as exc:
            return UttResult(utt_id, {}, f"estimate: {exc}")
        problem = check_pair(ref, ref_fs, est, est_fs, expected_fs)
        if problem:
            return UttResult(utt_id, {}, problem)
        scores, failures = score_arrays(ref, est, plan, dnsmos)
        return UttResult(utt_id, scores, "", failures)
    except Exception as exc:  # last resort: keep going with the other utterances
        return UttResult(utt_id, {}, f"internal error: {_one_line(exc)}")
