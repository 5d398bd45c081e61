"""Score enhanced speech: one utterance, never raising, and a whole scp pair into a scoring folder.

The checks name the reason an utterance cannot be scored (missing entry, unreadable or missing
file, sample-rate mismatch, length mismatch, non-finite samples, silent reference).  A metric that
fails on an otherwise good utterance (e.g. PESQ finding no speech) is NaN, and its reason is kept.

:func:`score_scp_files` scores every utterance of a reference/estimate scp pair (``nj`` worker
processes) and writes ``per_utt.csv``, ``summary.json`` and ``errors.txt`` atomically, also when it
is interrupted (then ``"partial": true``, see dispatch.metrics.completeness).
"""
from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from dispatch.data.scp import DataError, read_scp_dict
from dispatch.metrics.audio import AudioError, load_audio
from dispatch.metrics.composite import composite, nb_mos_lqo_to_raw
from dispatch.metrics.dnsmos import DNSMOS_KEYS, DnsmosScorer, dnsmos_unavailable_reason
from dispatch.metrics.intrusive import estoi, pesq_nb, pesq_wb, sdr, si_snr, stoi
from dispatch.utils.io import atomic_write_text

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


# ---- a whole scp pair: worker processes and the scoring folder's files ------------------------

class ScoringSetupError(ValueError):
    """A problem found before any utterance is scored (an unreadable scp, DNSMOS asked for but
    unavailable); its message is one line."""


_WORKER: dict = {}  # per worker process: the plan, the expected rate, the DNSMOS sessions


def _init_worker(plan: ScoringPlan, expected_fs: int, use_dnsmos: bool) -> None:
    _WORKER["plan"] = plan
    _WORKER["fs"] = expected_fs
    _WORKER["dnsmos"] = DnsmosScorer() if use_dnsmos else None  # sessions stay open per worker


def _work(item: tuple[str, str | None, str | None]) -> UttResult:
    utt, ref, inf = item
    return score_utterance(utt, ref, inf, _WORKER["plan"], _WORKER["fs"], _WORKER["dnsmos"])


def _run(items: list, plan: ScoringPlan, fs: int, use_dnsmos: bool, nj: int) -> Iterator[UttResult]:
    if nj <= 1:
        _init_worker(plan, fs, use_dnsmos)
        for item in items:
            yield _work(item)
        return
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ctx.Pool(nj, initializer=_init_worker, initargs=(plan, fs, use_dnsmos)) as pool:
        yield from pool.imap(_work, items, chunksize=1)


def _mean(values: Sequence[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return float(sum(finite) / len(finite)) if finite else None


def write_outputs(
    out_dir: Path, results: list[UttResult], columns: list[str], info: dict, partial: bool
) -> dict:
    """Write per_utt.csv, errors.txt and summary.json atomically; return the summary."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["utt_id", *columns, "error"])
    for r in results:
        writer.writerow([r.utt_id, *(repr(float(r.scores.get(c, math.nan))) for c in columns),
                         r.reason()])
    atomic_write_text(out_dir / "per_utt.csv", buf.getvalue())
    atomic_write_text(
        out_dir / "errors.txt", "".join(f"{r.utt_id}\t{r.reason()}\n" for r in results if r.reason())
    )
    summary: dict = {c: _mean([r.scores.get(c, math.nan) for r in results if r.ok]) for c in columns}
    summary.update(
        num_utts=len(results),
        num_scored=sum(r.ok for r in results),
        num_failed=sum(not r.ok for r in results),
        counts={c: sum(math.isfinite(r.scores.get(c, math.nan)) for r in results) for c in columns},
        failed={r.utt_id: r.error for r in results if not r.ok},
        metric_failures={r.utt_id: r.metric_errors for r in results if r.ok and r.metric_errors},
        partial=partial,
        **info,
    )
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _use_dnsmos(mode: str, notes: list[str]) -> bool:
    """``auto``: DNSMOS when it is installed (else a note); ``on``: required; ``off``: never."""
    if mode == "off":
        return False
    reason = dnsmos_unavailable_reason()
    if reason and mode == "on":
        raise ScoringSetupError(f"--dnsmos on, but {reason}")
    if reason:
        notes.append(reason)
    return not reason


def score_scp_files(ref_scp: str, inf_scp: str, out_dir: Path, nj: int = 1, fs: int = 16000,
                    dnsmos: str = "auto", composite_pesq: str = "wb", progress: bool = True) -> dict:
    """Score every utterance of ``ref_scp`` (clean) against ``inf_scp`` (estimates) into
    ``out_dir``; returns the summary (also ``out_dir/summary.json``). Each failure is one line on
    stderr; an interrupted run keeps what was scored. ScoringSetupError before anything is scored."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        ref, inf = read_scp_dict(ref_scp), read_scp_dict(inf_scp)
    except DataError as exc:
        raise ScoringSetupError(f"error: {exc}") from None
    items = [(k, ref.get(k), inf.get(k)) for k in list(ref) + [k for k in inf if k not in ref]]
    plan = plan_for(fs, composite_pesq)
    notes = list(plan.notes)
    use_dnsmos = _use_dnsmos(dnsmos, notes)
    for note in notes:
        print(f"score.py: {note}", file=sys.stderr)
    columns = list(plan.metrics) + (list(DNSMOS_KEYS) if use_dnsmos else [])
    info = {"fs": fs, "composite_pesq": plan.composite_pesq, "notes": notes,
            "ref_scp": str(ref_scp), "inf_scp": str(inf_scp)}

    from tqdm import tqdm

    results: list[UttResult] = []
    finished = False
    try:
        bar = tqdm(total=len(items), desc="scoring", unit="utt", disable=not progress,
                   file=sys.stderr)
        for res in _run(items, plan, fs, use_dnsmos, nj):
            results.append(res)
            if res.reason():
                tqdm.write(f"score.py: {res.utt_id}: {res.reason()}", file=sys.stderr)
            bar.update(1)
        bar.close()
        finished = True
    finally:  # even on Ctrl-C or a crash, keep what was scored
        summary = write_outputs(out_dir, results, columns, info, partial=not finished)
    print(f"score.py: scored {summary['num_scored']} of {summary['num_utts']} utterances "
          f"({summary['num_failed']} failed) -> {out_dir}/per_utt.csv, summary.json",
          file=sys.stderr)
    return summary
