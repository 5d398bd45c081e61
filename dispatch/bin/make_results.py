"""Collect every system's scores into RESULTS.md (+ results.csv, results.json and two PNG plots).

    python -m dispatch.bin.make_results EXP_ROOT [--test_sets A B] [--nokd student_nokd] \
        [--published dispatch/metrics/published/dns_ins20.yaml ...] [--out_dir DIR]

What they hold (rows, Δ vs the no-KD student with paired-bootstrap intervals, seed runs, plots)
is described in :mod:`dispatch.results.report`, which writes them (to ``--out_dir``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from dispatch.results.report import make_results


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
