"""The markdown of RESULTS.md: number formats, the systems table and the Δ table of one test set."""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

from dispatch.metrics.bootstrap import MIN_SIGNIFICANT_N, SMALL_N_TEXT, PairedDelta
from dispatch.metrics.seeds import DELTA_SEEDS_TEXT, SEEDS_TEXT, pairs_note
from dispatch.results.deltas import matched_utterances
from dispatch.results.scores import KNOWN_METRICS, STAT_KEYS, SystemResult

DASH = "—"
STAT_HEADERS = {"params_M": "params (M)", "macs_G_per_s": "MACs/s (G)",
                "rtf_cpu_1thread": "RTF (CPU, 1 thread)", "rtf_onnx_1thread": "RTF (ONNX, 1 thread)",
                "latency_ms": "latency (ms)", "rtf_chunk_1thread": "RTF per chunk"}
DECIMALS = {"STOI": 3, "ESTOI": 3, "params_M": 2, "macs_G_per_s": 2, "rtf_cpu_1thread": 3,
            "rtf_onnx_1thread": 3, "latency_ms": 1, "rtf_chunk_1thread": 3}


def fmt(value: Optional[float], key: str, signed: bool = False, extra: int = 0) -> str:
    """``value`` with ``key``'s decimals (+ ``extra``); ``—`` when missing or not finite."""
    if value is None or not math.isfinite(value):
        return DASH
    digits = DECIMALS.get(key, 2) + extra
    value = round(value, digits) + 0.0  # no "-0.00"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_delta(d: Optional[PairedDelta], key: str) -> str:
    """``+0.12 [+0.03, +0.21]*`` (``*``: the interval excludes 0)."""
    if d is None:
        return DASH
    star = "*" if d.significant else ""
    return (f"{fmt(d.mean, key, True, 1)} [{fmt(d.low, key, True, 1)}, "
            f"{fmt(d.high, key, True, 1)}]{star}")


def metric_columns(rows: Sequence[SystemResult]) -> list[str]:
    """Known metrics that some row has, in the scoring order, then any other published keys."""
    present = {k for r in rows for k, v in r.means.items() if math.isfinite(v)}
    cols = [k for k in KNOWN_METRICS if k in present]
    return cols + sorted(present - set(cols))


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _label(r: SystemResult) -> str:
    return f"{r.name} †" if r.published else r.name


def _spread(r: SystemResult, key: str) -> str:
    """`` ± 0.07`` for a metric averaged over several seeds, else nothing."""
    sd = r.spread.get(key)
    return f" ± {fmt(sd, key)}" if sd is not None and math.isfinite(sd) else ""


def _utts_cell(r: SystemResult) -> str:
    """Scored utterances (failed ones in brackets), over how many seeds, or why left out."""
    if r.published:
        return DASH
    if r.untrusted:
        text = f"left out: {r.untrusted}"
    elif r.n_scored is None:
        text = DASH
    else:
        text = f"{r.n_scored}" + (f" ({r.n_failed} failed)" if r.n_failed else "")
    return text + (f" over {len(r.seeds)} seeds" if len(r.seeds) > 1 else "")


def systems_section(rows: Sequence[SystemResult], metrics: Sequence[str]) -> list[str]:
    """The table of every row (figures, metric means ± seed spread, utterances), + its notes."""
    header = ["system", *(STAT_HEADERS[k] for k in STAT_KEYS), *metrics, "utts"]
    body = [[_label(r), *(fmt(r.stats.get(k), k) for k in STAT_KEYS),
             *(fmt(r.means.get(m), m) + _spread(r, m) for m in metrics), _utts_cell(r)]
            for r in rows]
    lines = [markdown_table(header, body), ""]
    if any(len(r.seeds) > 1 for r in rows):
        lines += [SEEDS_TEXT, ""]
    return lines


def delta_section(base: SystemResult, kd_rows: Sequence[SystemResult],
                  deltas: Mapping[str, Mapping[str, PairedDelta]], metrics: Sequence[str],
                  test_set: str, resamples: int, seed: int) -> list[str]:
    """``### Δ vs <no-KD>``: how the interval was made, one row per KD system, small-n note."""
    if any(r.seed_runs for r in (base, *kd_rows)):
        how = DELTA_SEEDS_TEXT.format(resamples=resamples, seed=seed)
    else:
        how = (f"Mean difference (KD − {base.name}) over utterances matched by id, with a 95 % "
               f"paired-bootstrap interval ({resamples} resamples, seed {seed}); "
               "`*`: the interval excludes 0.")
    header = ["system", *metrics, "matched utts"]
    body = [[r.name, *(fmt_delta(deltas[r.name].get(m), m) for m in metrics),
             str(matched_utterances(base, r)) + pairs_note(deltas[r.name])] for r in kd_rows]
    lines = [f"### Δ vs {base.name} on {test_set}", "", how, "", markdown_table(header, body), ""]
    if any(0 < d.n < MIN_SIGNIFICANT_N for dd in deltas.values() for d in dd.values()):
        lines += [SMALL_N_TEXT.format(n=MIN_SIGNIFICANT_N), ""]
    return lines
