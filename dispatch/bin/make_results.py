"""Collect every system's scores into RESULTS.md (+ results.csv, results.json and two PNG plots).

    python -m dispatch.bin.make_results EXP_ROOT [--test_sets A B] [--nokd student_nokd] \
        [--published dispatch/metrics/published/dns_ins20.yaml ...] [--out_dir DIR]

Reads the layout of doc/CONVENTIONS.md:
  EXP_ROOT/<system>/scoring_<test_set>/per_utt.csv, summary.json   (from dispatch.bin.score)
  EXP_ROOT/<system>/model_stats.json                               (from dispatch.bin.model_stats)
Rows: noisy, teacher, the no-KD student, every kd_* system (sorted), then published rows.
For each KD student, the difference from the no-KD student is the mean over utterances matched by
id, with a 95 % paired-bootstrap interval (``--resamples`` resamples, fixed ``--seed``); ``*`` marks
intervals that exclude 0.  A missing file gives ``—`` cells and a one-line warning, never a crash.
A system trained on several seeds (``<system>_seed<N>`` folders, driver option ``--seeds``) is one row:
mean over seeds ± sample std across seeds, and a two-level (seeds, then utterances) paired bootstrap
for its Δ; see dispatch.metrics.seeds.  With one run per system the output is as without seeds.
Outputs go to ``--out_dir`` (default: the folder holding EXP_ROOT, i.e. the recipe folder).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from dispatch.utils.io import atomic_write_bytes, atomic_write_text
from dispatch.metrics.bootstrap import (MIN_SIGNIFICANT_N, SMALL_N_TEXT, PairedDelta,
                                        paired_bootstrap)
from dispatch.metrics.completeness import scoring_problems
from dispatch.metrics.dnsmos import DNSMOS_KEYS
from dispatch.metrics.scoring import METRIC_KEYS
from dispatch.metrics.seeds import (DELTA_SEEDS_TEXT, SEEDS_TEXT, combine_over_seeds, pairs_note,
                                    per_utt_over_seeds, seed_bootstrap, seed_folders,
                                    system_of_folders)

DASH = "—"
STAT_KEYS = ("params_M", "macs_G_per_s", "rtf_cpu_1thread", "rtf_onnx_1thread", "latency_ms",
             "rtf_chunk_1thread")
STAT_HEADERS = {"params_M": "params (M)", "macs_G_per_s": "MACs/s (G)",
                "rtf_cpu_1thread": "RTF (CPU, 1 thread)", "rtf_onnx_1thread": "RTF (ONNX, 1 thread)",
                "latency_ms": "latency (ms)", "rtf_chunk_1thread": "RTF per chunk"}
DECIMALS = {"STOI": 3, "ESTOI": 3, "params_M": 2, "macs_G_per_s": 2, "rtf_cpu_1thread": 3,
            "rtf_onnx_1thread": 3, "latency_ms": 1, "rtf_chunk_1thread": 3}
KNOWN_METRICS = METRIC_KEYS + DNSMOS_KEYS


@dataclass
class SystemResult:
    """One row: a system of EXP_ROOT on one test set, or a published row."""

    name: str
    stats: dict[str, float] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    per_utt: dict[str, dict[str, float]] | None = None  # utt_id -> metric -> value
    n_scored: int | None = None
    n_failed: int | None = None
    published: str = ""  # source, for published rows
    note: str = ""
    spread: dict[str, float] = field(default_factory=dict)  # metric -> std across seeds
    seeds: list[int | None] = field(default_factory=list)  # seeds of its runs (None: no _seed<N>)
    seed_runs: dict[int, dict[str, dict[str, float]]] | None = None  # seed -> per_utt (>1 seed)
    untrusted: str = ""  # why its scores were left out (dispatch.metrics.completeness)


def _warn(warnings: list[str], text: str) -> None:
    warnings.append(text)
    print(f"make_results.py: warning: {text}", file=sys.stderr)


def _to_float(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def read_per_utt(path: Path) -> tuple[dict[str, dict[str, float]], int]:
    """per_utt.csv -> ({utt_id: {metric: value}} for scored utterances, number failed)."""
    scores: dict[str, dict[str, float]] = {}
    failed = 0
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            values = {k: _to_float(v) for k, v in row.items() if k not in ("utt_id", "error")}
            if row.get("error") and not any(math.isfinite(v) for v in values.values()):
                failed += 1
                continue
            scores[row["utt_id"]] = values
    return scores, failed


def load_system(exp_root: Path, name: str, test_set: str, warnings: list[str]) -> SystemResult:
    """Read one system's files; anything missing is a warning and an empty cell."""
    res = SystemResult(name)
    sys_dir = exp_root / name
    stats_file = sys_dir / "model_stats.json"
    if stats_file.is_file():
        try:
            data = json.loads(stats_file.read_text(encoding="utf-8"))
            res.stats = {k: float(data[k]) for k in STAT_KEYS if data.get(k) is not None}
        except (ValueError, TypeError) as exc:
            _warn(warnings, f"{stats_file}: unreadable ({exc})")
    elif name != "noisy" and sys_dir.is_dir():
        _warn(warnings, f"{name}: no {stats_file}")
    if not sys_dir.is_dir():
        _warn(warnings, f"{name}: no system folder {sys_dir}")
        return res
    score_dir = sys_dir / f"scoring_{test_set}"
    per_utt_file, summary_file = score_dir / "per_utt.csv", score_dir / "summary.json"
    try:
        if per_utt_file.is_file():
            res.per_utt, res.n_failed = read_per_utt(per_utt_file)
            res.n_scored = len(res.per_utt)
            keys = {k for v in res.per_utt.values() for k in v}
            for k in keys:
                vals = [v.get(k, math.nan) for v in res.per_utt.values()]
                finite = [x for x in vals if math.isfinite(x)]
                if finite:
                    res.means[k] = float(np.mean(finite))
        elif summary_file.is_file():
            data = json.loads(summary_file.read_text(encoding="utf-8"))
            res.means = {k: float(v) for k, v in data.items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool)
                         and (k in KNOWN_METRICS) and math.isfinite(v)}
            res.n_scored, res.n_failed = data.get("num_scored"), data.get("num_failed")
            _warn(warnings, f"{name}/{test_set}: no per_utt.csv, means only (no intervals)")
        else:
            _warn(warnings, f"{name}/{test_set}: no scores in {score_dir}")
    except (OSError, ValueError, csv.Error) as exc:
        _warn(warnings, f"{name}/{test_set}: unreadable scores ({exc})")
    problems = scoring_problems(score_dir, (exp_root.resolve().parent,)) if score_dir.is_dir() else []
    if problems:  # partial, malformed or short scoring: flagged in the table, never averaged
        _warn(warnings, f"{name}/{test_set}: scores left out: {'; '.join(problems)}")
        res.per_utt, res.means, res.untrusted = None, {}, problems[0]
    return res


def load_seeded_system(exp_root: Path, name: str, test_set: str, warnings: list[str]
                       ) -> SystemResult:
    """One system over its seed runs (``<name>_seed<N>`` folders, see dispatch.metrics.seeds).

    A single run is that run's result; several give the mean over seeds with the std across them,
    per-utterance means over seeds (for the scatter plot) and each run's scores (for the Δ).
    """
    runs = {s: load_system(exp_root, f, test_set, warnings)
            for s, f in seed_folders(exp_root, name).items()}
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
        _warn(warnings, f"{name}/{test_set}: per-utterance scores missing for some seeds, no Δ")
    return res


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
            _warn(warnings, f"published rows {path}: unreadable ({exc})")
    return rows


def system_names(exp_root: Path, nokd: str) -> list[str]:
    """noisy, teacher, the no-KD student, then every kd_* system (sorted; seed runs grouped)."""
    kd = (system_of_folders(p.name for p in exp_root.glob("kd_*") if p.is_dir())
          if exp_root.is_dir() else [])
    return ["noisy", "teacher", nokd, *kd]


def discover_test_sets(exp_root: Path) -> list[str]:
    found = {p.name[len("scoring_"):] for p in exp_root.glob("*/scoring_*") if p.is_dir()}
    return sorted(found)


def _metric_runs(r: SystemResult, metric: str) -> dict[int | None, dict[str, float]]:
    """seed -> {utt_id: value of ``metric``} for each scored run of ``r``."""
    runs = r.seed_runs or ({} if r.per_utt is None else {(r.seeds or [None])[0]: r.per_utt})
    return {s: {u: v.get(metric, math.nan) for u, v in p.items()} for s, p in runs.items()}


def deltas_vs(
    base: SystemResult, other: SystemResult, metrics: Sequence[str], resamples: int, seed: int
) -> dict[str, PairedDelta]:
    """Paired-bootstrap difference ``other - base`` per metric over common utterance ids (over
    seeds and utterances, ``seed_bootstrap``, when either system has several seed runs)."""
    out: dict[str, PairedDelta] = {}
    if base.seed_runs or other.seed_runs:
        for m in metrics:
            d = seed_bootstrap(_metric_runs(base, m), _metric_runs(other, m), resamples=resamples,
                               seed=seed)
            if d.n:
                out[m] = d
        return out
    if base.per_utt is None or other.per_utt is None:
        return out
    common = sorted(set(base.per_utt) & set(other.per_utt))
    for m in metrics:
        a = np.array([base.per_utt[u].get(m, math.nan) for u in common])
        b = np.array([other.per_utt[u].get(m, math.nan) for u in common])
        d = paired_bootstrap(a, b, resamples=resamples, seed=seed)
        if d.n:
            out[m] = d
    return out


def _fmt(value: float | None, key: str, signed: bool = False, extra: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return DASH
    digits = DECIMALS.get(key, 2) + extra
    value = round(value, digits) + 0.0  # no "-0.00"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_delta(d: PairedDelta | None, key: str) -> str:
    """``+0.12 [+0.03, +0.21]*`` (``*``: the interval excludes 0)."""
    if d is None:
        return DASH
    star = "*" if d.significant else ""
    return (f"{_fmt(d.mean, key, True, 1)} [{_fmt(d.low, key, True, 1)}, "
            f"{_fmt(d.high, key, True, 1)}]{star}")


def metric_columns(rows: Sequence[SystemResult]) -> list[str]:
    """Known metrics that some row has, in the scoring order, then any other published keys."""
    present = {k for r in rows for k, v in r.means.items() if math.isfinite(v)}
    cols = [k for k in KNOWN_METRICS if k in present]
    return cols + sorted(present - set(cols))


def _label(r: SystemResult) -> str:
    return f"{r.name} †" if r.published else r.name


def _spread(r: SystemResult, key: str) -> str:
    """`` ± 0.07`` for a metric averaged over several seeds, else nothing."""
    sd = r.spread.get(key)
    return f" ± {_fmt(sd, key)}" if sd is not None and math.isfinite(sd) else ""


def _seeds_note(r: SystemResult) -> str:
    return f" over {len(r.seeds)} seeds" if len(r.seeds) > 1 else ""


def _n_cell(r: SystemResult) -> str:
    if r.untrusted:
        return f"left out: {r.untrusted}"
    if r.n_scored is None:
        return DASH
    return f"{r.n_scored}" + (f" ({r.n_failed} failed)" if r.n_failed else "")


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _savefig(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_gains(deltas: dict[str, dict[str, PairedDelta]], metrics: Sequence[str], nokd: str,
               title: str, path: Path) -> bool:
    """One panel per metric: mean gain over the no-KD student per KD method, 95 % CI bars."""
    metrics = [m for m in metrics if any(m in d for d in deltas.values())]
    if not deltas or not metrics:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = min(3, len(metrics))
    nrow = math.ceil(len(metrics) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 0.5 * len(deltas) * nrow + 2.2 * nrow),
                             squeeze=False)
    names = list(deltas)
    for ax, m in zip(axes.flat, metrics):
        for i, name in enumerate(names):
            d = deltas[name].get(m)
            if d is None:
                continue
            color = "tab:green" if d.significant and d.mean > 0 else (
                "tab:red" if d.significant else "tab:gray")
            ax.errorbar(d.mean, i, xerr=[[d.mean - d.low], [d.high - d.mean]], fmt="o",
                        color=color, capsize=3)
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(-0.5, len(names) - 0.5)
        ax.invert_yaxis()
        ax.set_title(f"Δ {m} vs {nokd}", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(title + " (mean, 95 % paired-bootstrap CI)", fontsize=10, y=1.0)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return True


def plot_scatter(base: SystemResult, best: SystemResult, metrics: Sequence[str], title: str,
                 path: Path) -> bool:
    """Per-utterance scores of the no-KD student (x) against the best KD student (y)."""
    if base.per_utt is None or best.per_utt is None:
        return False
    common = sorted(set(base.per_utt) & set(best.per_utt))
    metrics = [m for m in metrics if any(math.isfinite(base.per_utt[u].get(m, math.nan)) for u in common)]
    if not common or not metrics:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.2), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        x = np.array([base.per_utt[u].get(m, math.nan) for u in common])
        y = np.array([best.per_utt[u].get(m, math.nan) for u in common])
        ok = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[ok], y[ok], s=12, alpha=0.7)
        lo, hi = float(np.min([x[ok], y[ok]])), float(np.max([x[ok], y[ok]]))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8)
        above = int(np.sum(y[ok] > x[ok]))
        ax.set_title(f"{m}: {best.name} better on {above}/{int(ok.sum())}", fontsize=9)
        ax.set_xlabel(base.name)
        ax.set_ylabel(best.name)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10, y=1.0)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return True


def best_kd(kd_rows: Sequence[SystemResult]) -> SystemResult | None:
    """Best KD student by mean PESQ_WB, or SI_SNR when no KD row has PESQ_WB."""
    for key in ("PESQ_WB", "SI_SNR"):
        cands = [r for r in kd_rows if math.isfinite(r.means.get(key, math.nan))]
        if cands:
            return max(cands, key=lambda r: r.means[key])
    return None


def build_test_set(
    exp_root: Path, test_set: str, nokd: str, published: list[SystemResult], out_dir: Path,
    resamples: int, seed: int, warnings: list[str],
) -> tuple[str, dict, list[dict]]:
    """Markdown section, JSON entry and CSV rows for one test set (and its plots)."""
    rows = [load_seeded_system(exp_root, n, test_set, warnings) for n in system_names(exp_root, nokd)]
    base = next(r for r in rows if r.name == nokd)
    kd_rows = [r for r in rows if r.name.startswith("kd_")]
    all_rows = rows + published
    metrics = metric_columns(all_rows)
    own_metrics = [m for m in metrics if any(m in r.means for r in rows)]

    header = ["system", *(STAT_HEADERS[k] for k in STAT_KEYS), *metrics, "utts"]
    body = [[_label(r), *(_fmt(r.stats.get(k), k) for k in STAT_KEYS),
             *(_fmt(r.means.get(m), m) + _spread(r, m) for m in metrics),
             _n_cell(r) + _seeds_note(r) if not r.published else DASH]
            for r in all_rows]
    md = [f"## {test_set}", "", markdown_table(header, body), ""]
    if any(len(r.seeds) > 1 for r in rows):
        md += [SEEDS_TEXT, ""]

    deltas = {r.name: deltas_vs(base, r, own_metrics, resamples, seed) for r in kd_rows}
    if base.per_utt is None:
        if kd_rows:
            _warn(warnings, f"{test_set}: no per-utterance scores for {nokd}, no Δ table")
    elif kd_rows:
        n_common = {r.name: len(set(base.per_utt) & set(r.per_utt or {})) for r in kd_rows}
        md += [f"### Δ vs {nokd} on {test_set}", "",
               f"Mean difference (KD − {nokd}) over utterances matched by id, with a 95 % "
               f"paired-bootstrap interval ({resamples} resamples, seed {seed}); "
               "`*`: the interval excludes 0.", ""]
        if any(r.seed_runs for r in (base, *kd_rows)):
            md[-2:] = [DELTA_SEEDS_TEXT.format(resamples=resamples, seed=seed), ""]
        dheader = ["system", *own_metrics, "matched utts"]
        dbody = [[r.name, *(fmt_delta(deltas[r.name].get(m), m) for m in own_metrics),
                  str(n_common[r.name]) + pairs_note(deltas[r.name])] for r in kd_rows]
        md += [markdown_table(dheader, dbody), ""]
        if any(0 < d.n < MIN_SIGNIFICANT_N for dd in deltas.values() for d in dd.values()):
            md += [SMALL_N_TEXT.format(n=MIN_SIGNIFICANT_N), ""]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in test_set)
        gains_png = out_dir / f"results_{safe}_gains.png"
        if plot_gains(deltas, own_metrics, nokd, f"KD gains on {test_set}", gains_png):
            md += [f"![KD gains on {test_set}]({gains_png.name})", ""]
        best = best_kd(kd_rows)
        scatter_png = out_dir / f"results_{safe}_scatter.png"
        sc_metrics = [m for m in ("PESQ_WB", "SI_SNR") if m in own_metrics]
        if best is not None and plot_scatter(base, best, sc_metrics,
                                             f"{nokd} vs best KD ({best.name}) on {test_set}",
                                             scatter_png):
            md += [f"![{nokd} vs {best.name} on {test_set}]({scatter_png.name})", ""]

    csv_rows = []
    for r in all_rows:
        row = {"test_set": test_set, "system": r.name, "published": r.published,
               **{k: r.stats.get(k) for k in STAT_KEYS},
               "n_scored": r.n_scored, "n_failed": r.n_failed,
               **{m: r.means.get(m) for m in metrics}}
        if len(r.seeds) > 1:
            row.update({"seeds": " ".join(map(str, r.seeds)),
                        **{f"{m}_seed_std": r.spread.get(m) for m in metrics}})
        for m, d in deltas.get(r.name, {}).items():
            row.update({f"delta_{m}": d.mean, f"delta_{m}_low": d.low, f"delta_{m}_high": d.high,
                        f"delta_{m}_significant": d.significant})
        csv_rows.append(row)
    entry = {"rows": csv_rows, "metrics": metrics, "nokd": nokd,
             "deltas": {n: {m: vars(d) | {"significant": d.significant} for m, d in dd.items()}
                        for n, dd in deltas.items()}}
    return "\n".join(md), entry, csv_rows


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def make_results(
    exp_root: Path, test_sets: Sequence[str] | None = None, nokd: str = "student_nokd",
    published: Sequence[Path] = (), out_dir: Path | None = None, resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Write RESULTS.md, results.csv, results.json and the plots; return the JSON content."""
    exp_root = Path(exp_root)
    out_dir = Path(out_dir) if out_dir is not None else exp_root.resolve().parent
    warnings: list[str] = []
    if not exp_root.is_dir():
        _warn(warnings, f"experiment folder {exp_root} does not exist")
    sets = list(test_sets) if test_sets else discover_test_sets(exp_root)
    if not sets:
        _warn(warnings, f"no scoring_<test_set> folders under {exp_root}")
        sets = [DASH]
    pub_rows = load_published(published, warnings)
    sections, entries, all_csv = [], {}, []
    for ts in sets:
        md, entry, csv_rows = build_test_set(exp_root, ts, nokd, pub_rows, out_dir, resamples,
                                             seed, warnings)
        sections.append(md)
        entries[ts] = entry
        all_csv += csv_rows

    lines = ["# RESULTS", "",
             f"Generated by `python -m dispatch.bin.make_results {exp_root}`. Metric columns are "
             "means over scored utterances (STOI/ESTOI in 0..1, SI_SNR/SDR in dB); params, MACs "
             "per second of audio and single-thread CPU real-time factor come from "
             "`dispatch.bin.model_stats`, as do the onnxruntime real-time factor of the exported "
             "graph (— where it does not export) and, for causal students, the algorithmic "
             "latency and real-time factor of chunked streaming (`dispatch.deploy.streaming`).", ""]
    lines += sections
    if pub_rows:
        lines += ["Rows marked † are published numbers, not run here:", ""]
        lines += [f"- {r.name}: {r.published}" + (f" ({r.note})" if r.note else "") for r in pub_rows]
        lines += [""]
    if warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in warnings] + [""]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "RESULTS.md", "\n".join(lines))

    fields: list[str] = []
    for row in all_csv:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    for row in all_csv:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    atomic_write_text(out_dir / "results.csv", buf.getvalue())
    result = _json_safe({"exp_root": str(exp_root), "test_sets": entries, "warnings": warnings,
                         "bootstrap": {"resamples": resamples, "seed": seed, "level": 0.95}})
    atomic_write_text(out_dir / "results.json", json.dumps(result, indent=2) + "\n")
    print(f"make_results.py: wrote {out_dir / 'RESULTS.md'}", file=sys.stderr)
    return result


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exp_root", type=Path, help="the recipe's exp/ folder")
    parser.add_argument("--test_sets", nargs="+", default=None,
                        help="test sets (default: every scoring_<set> folder found)")
    parser.add_argument("--nokd", default="student_nokd", help="the no-KD student system")
    parser.add_argument("--published", nargs="+", type=Path, default=[],
                        help="YAML files of published rows")
    parser.add_argument("--out_dir", type=Path, default=None,
                        help="output folder (default: EXP_ROOT/..)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return parser


def main(cmd: Sequence[str] | None = None) -> dict:
    args = get_parser().parse_args(cmd)
    return make_results(args.exp_root, args.test_sets, args.nokd, args.published, args.out_dir,
                        args.resamples, args.seed)


if __name__ == "__main__":
    main()
