"""Score enhanced speech against clean references, one row per utterance.

    python -m dispatch.bin.score --ref_scp REF.scp --inf_scp INF.scp --out_dir OUT [--nj N] [--fs 16000]

Writes (atomically, also when interrupted, then flagged ``"partial": true``):
  OUT/per_utt.csv    utt_id, PESQ_WB, PESQ_NB, STOI, ESTOI, SI_SNR, SDR, CSIG, CBAK, COVL
                     [, DNSMOS_SIG, DNSMOS_BAK, DNSMOS_OVRL, DNSMOS_P808], error
  OUT/summary.json   the means of each metric over the utterances where it is defined, counts,
                     notes, and the failed utterances with their reasons
  OUT/errors.txt     ``utt_id<TAB>reason`` for every failed utterance or failed metric
Each failure is also one line on stderr.  STOI/ESTOI are in 0..1 (espnet writes percent).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import multiprocessing
import sys
from pathlib import Path
from typing import Iterator, Sequence

from dispatch.utils.io import atomic_write_text
from dispatch.data.scp import DataError, read_scp_dict
from dispatch.metrics.dnsmos import DNSMOS_KEYS, DnsmosScorer, dnsmos_unavailable_reason
from dispatch.metrics.scoring import ScoringPlan, UttResult, plan_for, score_utterance

_WORKER: dict = {}


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref_scp", required=True, help="clean references: 'utt_id path' lines")
    parser.add_argument("--inf_scp", required=True, help="estimates: 'utt_id path' lines")
    parser.add_argument("--out_dir", required=True, help="output folder")
    parser.add_argument("--nj", type=int, default=1, help="parallel worker processes")
    parser.add_argument("--fs", type=int, default=16000, help="expected sample rate (Hz)")
    parser.add_argument(
        "--dnsmos", choices=("auto", "on", "off"), default="auto",
        help="DNSMOS P.835: auto = when onnxruntime and the speechmos models are installed",
    )
    parser.add_argument(
        "--composite_pesq", choices=("wb", "nb_raw"), default="wb",
        help="PESQ inside CSIG/CBAK/COVL: wide-band MOS-LQO (common in VoiceBank papers) "
        "or raw P.862 (Hu & Loizou's original)",
    )
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


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


def main(cmd: Sequence[str] | None = None) -> dict:
    """Run scoring; returns the summary dict (also written to OUT/summary.json)."""
    args = get_parser().parse_args(cmd)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        ref = read_scp_dict(args.ref_scp)
        inf = read_scp_dict(args.inf_scp)
    except DataError as exc:
        raise SystemExit(f"score.py: error: {exc}") from None
    keys = list(ref) + [k for k in inf if k not in ref]
    items = [(k, ref.get(k), inf.get(k)) for k in keys]

    plan = plan_for(args.fs, args.composite_pesq)
    notes = list(plan.notes)
    use_dnsmos = args.dnsmos != "off"
    if use_dnsmos:
        reason = dnsmos_unavailable_reason()
        if reason:
            if args.dnsmos == "on":
                raise SystemExit(f"score.py: --dnsmos on, but {reason}")
            notes.append(reason)
            use_dnsmos = False
    for note in notes:
        print(f"score.py: {note}", file=sys.stderr)
    columns = list(plan.metrics) + (list(DNSMOS_KEYS) if use_dnsmos else [])
    info = {"fs": args.fs, "composite_pesq": plan.composite_pesq, "notes": notes,
            "ref_scp": str(args.ref_scp), "inf_scp": str(args.inf_scp)}

    from tqdm import tqdm

    results: list[UttResult] = []
    finished = False
    try:
        bar = tqdm(total=len(items), desc="scoring", unit="utt", disable=args.no_progress,
                   file=sys.stderr)
        for res in _run(items, plan, args.fs, use_dnsmos, args.nj):
            results.append(res)
            if res.reason():
                tqdm.write(f"score.py: {res.utt_id}: {res.reason()}", file=sys.stderr)
            bar.update(1)
        bar.close()
        finished = True
    finally:  # even on Ctrl-C or a crash, keep what was scored
        summary = write_outputs(out_dir, results, columns, info, partial=not finished)
    print(
        f"score.py: scored {summary['num_scored']} of {summary['num_utts']} utterances "
        f"({summary['num_failed']} failed) -> {out_dir}/per_utt.csv, summary.json",
        file=sys.stderr,
    )
    return summary


if __name__ == "__main__":
    main()
