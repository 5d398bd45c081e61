"""Reading a system's scores and model figures from its run folders (one row of RESULTS.md).

Reads what ``dispatch.bin.score`` and ``dispatch.bin.model_stats`` write (dispatch.results.layout):
``scoring_<test_set>/per_utt.csv`` (the means and the per-utterance values the Δ intervals need),
else ``summary.json`` (means only), and ``model_stats.json``. A scoring that is partial, malformed
or short (dispatch.metrics.completeness) is left out, never averaged. Anything missing is a
warning and an empty cell, never a crash.
"""
from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from dispatch.metrics.completeness import scoring_problems
from dispatch.metrics.dnsmos import DNSMOS_KEYS
from dispatch.metrics.scoring import METRIC_KEYS
from dispatch.metrics.seeds import combine_over_seeds, per_utt_over_seeds
from dispatch.results.layout import NOISY, ExperimentLayout, RunFolder

#: The figures of ``model_stats.json`` that RESULTS.md shows, in column order.
STAT_KEYS = ("params_M", "macs_G_per_s", "rtf_cpu_1thread", "rtf_onnx_1thread", "latency_ms",
             "rtf_chunk_1thread")
KNOWN_METRICS = METRIC_KEYS + DNSMOS_KEYS

PerUtt = dict[str, dict[str, float]]  # utt_id -> metric -> value


@dataclass
class SystemResult:
    """One row: a system of EXP_ROOT on one test set, or a published row."""

    name: str
    stats: dict[str, float] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    per_utt: Optional[PerUtt] = None
    n_scored: Optional[int] = None
    n_failed: Optional[int] = None
    published: str = ""  # source, for published rows
    note: str = ""
    spread: dict[str, float] = field(default_factory=dict)  # metric -> std across seeds
    seeds: list[Optional[int]] = field(default_factory=list)  # seeds of its runs (None: no _seed<N>)
    seed_runs: Optional[dict[int, PerUtt]] = None  # seed -> per_utt (>1 seed)
    untrusted: str = ""  # why its scores were left out (dispatch.metrics.completeness)


@dataclass
class Scoring:
    """What one ``scoring_<test_set>`` folder gives: scores, counts, and notes on what is missing."""

    per_utt: Optional[PerUtt] = None
    means: dict[str, float] = field(default_factory=dict)
    n_scored: Optional[int] = None
    n_failed: Optional[int] = None
    notes: list[str] = field(default_factory=list)
    untrusted: str = ""


def warn(warnings: list[str], text: str) -> None:
    """Keep ``text`` for the Warnings section of RESULTS.md and say it on stderr."""
    warnings.append(text)
    print(f"make_results.py: warning: {text}", file=sys.stderr)


def _to_float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_per_utt(path: Path) -> tuple[PerUtt, int]:
    """per_utt.csv -> ({utt_id: {metric: value}} for scored utterances, number failed)."""
    scores: PerUtt = {}
    failed = 0
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            values = {k: _to_float(v) for k, v in row.items() if k not in ("utt_id", "error")}
            if row.get("error") and not any(math.isfinite(v) for v in values.values()):
                failed += 1
                continue
            scores[row["utt_id"]] = values
    return scores, failed


def _finite_means(per_utt: PerUtt) -> dict[str, float]:
    """Each metric's mean over the utterances where it is finite."""
    means = {}
    for key in {k for v in per_utt.values() for k in v}:
        finite = [x for x in (v.get(key, math.nan) for v in per_utt.values()) if math.isfinite(x)]
        if finite:
            means[key] = float(np.mean(finite))
    return means


def read_scoring(score_dir: Path, bases: Sequence[Path] = ()) -> Scoring:
    """Read ``per_utt.csv`` (else ``summary.json``) of one scoring folder; left out when untrusted.

    ``bases``: folders to find the recorded reference scp in (the recipe folder).
    """
    out = Scoring()
    per_utt_file, summary_file = score_dir / "per_utt.csv", score_dir / "summary.json"
    try:
        if per_utt_file.is_file():
            out.per_utt, out.n_failed = read_per_utt(per_utt_file)
            out.n_scored = len(out.per_utt)
            out.means = _finite_means(out.per_utt)
        elif summary_file.is_file():
            data = json.loads(summary_file.read_text(encoding="utf-8"))
            out.means = {k: float(v) for k, v in data.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)
                         and (k in KNOWN_METRICS) and math.isfinite(v)}
            out.n_scored, out.n_failed = data.get("num_scored"), data.get("num_failed")
            out.notes.append("no per_utt.csv, means only (no intervals)")
        else:
            out.notes.append(f"no scores in {score_dir}")
    except (OSError, ValueError, csv.Error) as exc:
        out.notes.append(f"unreadable scores ({exc})")
    problems = scoring_problems(score_dir, bases) if score_dir.is_dir() else []
    if problems:  # partial, malformed or short scoring: flagged in the table, never averaged
        out.notes.append(f"scores left out: {'; '.join(problems)}")
        out.per_utt, out.means, out.untrusted = None, {}, problems[0]
    return out


def read_model_stats(run: RunFolder, warnings: list[str]) -> dict[str, float]:
    """The :data:`STAT_KEYS` figures of ``model_stats.json`` (none for the noisy input)."""
    if run.model_stats.is_file():
        try:
            data = json.loads(run.model_stats.read_text(encoding="utf-8"))
            return {k: float(data[k]) for k in STAT_KEYS if data.get(k) is not None}
        except (ValueError, TypeError) as exc:
            warn(warnings, f"{run.model_stats}: unreadable ({exc})")
    elif run.name != NOISY and run.path.is_dir():
        warn(warnings, f"{run.name}: no {run.model_stats}")
    return {}


def load_run(run: RunFolder, test_set: str, warnings: list[str]) -> SystemResult:
    """Read one run folder's files; anything missing is a warning and an empty cell."""
    res = SystemResult(run.name, stats=read_model_stats(run, warnings))
    if not run.path.is_dir():
        warn(warnings, f"{run.name}: no system folder {run.path}")
        return res
    scoring = read_scoring(run.scoring_dir(test_set), (Path(run.exp_root).resolve().parent,))
    for note in scoring.notes:
        warn(warnings, f"{run.name}/{test_set}: {note}")
    res.per_utt, res.means, res.untrusted = scoring.per_utt, scoring.means, scoring.untrusted
    res.n_scored, res.n_failed = scoring.n_scored, scoring.n_failed
    return res


def load_system(layout: ExperimentLayout, name: str, test_set: str, warnings: list[str]
                ) -> SystemResult:
    """One system over its seed runs (``<name>_seed<N>`` folders, see dispatch.metrics.seeds).

    A single run is that run's result; several give the mean over seeds with the std across them,
    per-utterance means over seeds (for the scatter plot) and each run's scores (for the Δ).
    """
    runs = {s: load_run(r, test_set, warnings) for s, r in layout.runs(name).items()}
    if len(runs) == 1:
        res = next(iter(runs.values()))
        res.name, res.seeds = name, list(runs)
        return res
    scored = {s: r.per_utt for s, r in runs.items() if r.per_utt is not None}
    res = SystemResult(name, seeds=list(runs),
                       seed_runs=scored if len(scored) == len(runs) else None)
    res.means, res.spread = combine_over_seeds([r.means for r in runs.values()])
    res.stats = combine_over_seeds([r.stats for r in runs.values()])[0]
    if all(r.n_scored is not None for r in runs.values()):
        res.n_scored = sum(r.n_scored for r in runs.values())
        res.n_failed = sum(r.n_failed or 0 for r in runs.values())
    if res.seed_runs:
        res.per_utt = per_utt_over_seeds(list(res.seed_runs.values()))
    elif scored:
        warn(warnings, f"{name}/{test_set}: per-utterance scores missing for some seeds, no Δ")
    return res


def mean_over_test_sets(run: RunFolder, test_sets: Sequence[str]) -> dict[str, float]:
    """Each metric's mean over ``test_sets`` of the run's trusted scores; a metric missing on
    any test set is left out (nothing quietly: the caller picks among what is there)."""
    per_set = [read_scoring(run.scoring_dir(t), (Path(run.exp_root).resolve().parent,)).means
               for t in test_sets]
    if not per_set:
        return {}
    common = set.intersection(*(set(m) for m in per_set))
    return {k: float(np.mean([m[k] for m in per_set])) for k in sorted(common)}


def load_published(paths: Sequence[Path], warnings: list[str]) -> list[SystemResult]:
    """Published rows from YAML files (format: see dispatch/metrics/published/dns_ins20.yaml)."""
    import yaml

    rows: list[SystemResult] = []
    for path in paths:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            source = str(data.get("source", path))
            if data.get("test_set"):
                source += f", test set {data['test_set']}"
            for item in data.get("rows", []):
                stats = {k: float(item[k]) for k in STAT_KEYS if item.get(k) is not None}
                means = {str(k): float(v) for k, v in (item.get("metrics") or {}).items()}
                rows.append(SystemResult(str(item["name"]), stats, means, published=source,
                                         note=str(item.get("note", ""))))
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
            warn(warnings, f"published rows {path}: unreadable ({exc})")
    return rows
