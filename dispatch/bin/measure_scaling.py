#!/usr/bin/env python3
"""Scaling figures for the README: data stages on many utterances, teacher cache on hours of audio.

    python -m dispatch.bin.measure_scaling data_stages --work W [--sizes 1000 10000] [--nj 2]
        [--seconds 1.0] [--out report.json]
    python -m dispatch.bin.measure_scaling teacher_cache --work W --teacher_config T.yaml
        [--hours 2] [--utt_seconds 10] [--nj 2] [--out report.json]

``data_stages`` times stages 2, 3 and 8 as the driver runs them (``dispatch.perf.data_stages``).
``teacher_cache`` writes the cache in float32 and float16 with ``--nj`` writers, and measures the
size per hour, the time, the 100-hour extrapolation and the effect of float16 storage on every
KD loss (``dispatch.perf.cache_scaling``). Both generate their corpus under ``--work``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

from dispatch.utils.io import atomic_write_text


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data_stages", help="time stages 2, 3 and 8")
    data.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000],
                      help="corpus sizes in utterances")
    data.add_argument("--seconds", type=float, default=1.0, help="seconds per utterance")
    cache = sub.add_parser("teacher_cache", help="teacher-cache size, time and float16 effect")
    cache.add_argument("--teacher_config", required=True,
                       help="ESPnet enh config of the teacher (random weights are used)")
    cache.add_argument("--hours", type=float, default=2.0, help="hours of generated audio")
    cache.add_argument("--utt_seconds", type=float, default=10.0, help="seconds per utterance")
    cache.add_argument("--kd_utts", type=int, default=16,
                       help="utterances on which the float16 effect on the KD losses is measured")
    for p in (data, cache):
        p.add_argument("--work", required=True, help="scratch folder for the generated corpus")
        p.add_argument("--nj", type=int, default=2, help="parallel jobs, as --nj of the driver")
        p.add_argument("--out", default=None, help="also write the JSON report here")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> dict:
    args = get_parser().parse_args(cmd)
    if args.what == "data_stages":
        from dispatch.perf.data_stages import format_data_stages, measure_data_stages

        report = measure_data_stages(Path(args.work), args.sizes, args.nj, args.seconds)
        text = format_data_stages(report)
    else:
        from dispatch.perf.cache_scaling import format_cache_scaling, measure_cache_scaling

        report = measure_cache_scaling(Path(args.work), args.teacher_config, args.hours,
                                       args.utt_seconds, args.nj, args.kd_utts)
        text = format_cache_scaling(report)
    if args.out:
        atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(text, flush=True)
    return report


if __name__ == "__main__":
    main()
