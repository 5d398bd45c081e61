"""How the recipe's data stages scale: stages 2, 3 and 8 timed on generated corpora of several sizes.

Each stage runs as the driver runs it (``python -m dispatch.bin.NAME ...`` with ``--nj``), on a
corpus from :mod:`dispatch.perf.corpus`:

stage 2  ``check_data DATA --fs FS --nj NJ --out_dir DUMP``   (reads every file once)
stage 3  ``collect_shapes DUMP STATS``                          (wav headers only)
stage 8  ``score --ref_scp DUMP/spk1.scp --inf_scp DUMP/wav.scp --nj NJ --dnsmos off``
         (the ``noisy`` system: every metric of every utterance except DNSMOS)

Per stage and size: wall seconds, CPU seconds of the process and all its workers
(``RUSAGE_CHILDREN``), utterances per wall second and CPU milliseconds per utterance. The CPU time
per utterance is the steadier figure on a shared machine; a stage is linear when it stays flat as
the corpus grows (``growth`` = CPU ms per utterance at the largest size / at the smallest).
"""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

from dispatch.perf.corpus import make_timing_corpus

STAGES = (2, 3, 8)


def stage_command(stage: int, data: Path, dump: Path, work: Path, nj: int, fs: int) -> List[str]:
    """The ``python -m`` arguments of one stage, as the driver runs it."""
    if stage == 2:
        return ["dispatch.bin.check_data", str(data), "--fs", str(fs), "--nj", str(nj),
                "--out_dir", str(dump)]
    if stage == 3:
        return ["dispatch.bin.collect_shapes", str(dump), str(work / "stats")]
    if stage == 8:
        return ["dispatch.bin.score", "--ref_scp", str(dump / "spk1.scp"), "--inf_scp",
                str(dump / "wav.scp"), "--out_dir", str(work / "scoring"), "--nj", str(nj),
                "--fs", str(fs), "--dnsmos", "off", "--no_progress"]
    raise ValueError(f"stage {stage} is not timed here; choose from {STAGES}")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_module(args: Sequence[str]) -> Dict[str, float]:
    """Run ``python -m ARGS``; wall and CPU seconds (its workers included). Fails on exit != 0."""
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{args[0]} failed with status {proc.returncode}: {tail[0]}")
    return {"wall_s": wall, "cpu_s": _children_cpu() - cpu}


def measure_data_stages(work: Path, sizes: Sequence[int], nj: int = 2, seconds: float = 1.0,
                        fs: int = 16000, stages: Sequence[int] = STAGES) -> dict:
    """Time every stage on a corpus of every size; returns {"rows": [...], "growth": {...}}."""
    rows = []
    for size in sizes:
        base = Path(work) / f"n{size}"
        start = time.perf_counter()
        make_timing_corpus(str(base / "data"), str(base / "wav"), size, seconds, fs, nj=nj)
        made = time.perf_counter() - start
        for stage in stages:
            cost = time_module(stage_command(stage, base / "data", base / "dump", base, nj, fs))
            rows.append({"stage": stage, "utterances": size, "seconds_per_utt": seconds,
                         "nj": nj, **cost, "utt_per_s": size / cost["wall_s"],
                         "cpu_ms_per_utt": 1e3 * cost["cpu_s"] / size,
                         "corpus_made_s": made})
    growth = {}
    for stage in stages:
        mine = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["utterances"])
        if len(mine) > 1:
            growth[stage] = mine[-1]["cpu_ms_per_utt"] / mine[0]["cpu_ms_per_utt"]
    return {"rows": rows, "growth": growth}


def format_data_stages(report: dict) -> str:
    """The report as a Markdown table."""
    lines = ["| stage | utterances | wall s | utt/s | CPU s | CPU ms/utt |",
             "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['stage']} | {r['utterances']} | {r['wall_s']:.1f} | "
                     f"{r['utt_per_s']:.0f} | {r['cpu_s']:.1f} | {r['cpu_ms_per_utt']:.2f} |")
    for stage, ratio in report["growth"].items():
        lines.append(f"stage {stage}: CPU per utterance at the largest size / smallest = {ratio:.2f}")
    return "\n".join(lines)
