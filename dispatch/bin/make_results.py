"""Collect every system's scores into RESULTS.md (+ results.csv, results.json and two PNG plots).

    python -m dispatch.bin.make_results EXP_ROOT [--test_sets A B] [--nokd student_nokd] \
        [--published dispatch/metrics/published/dns_ins20.yaml ...] [--out_dir DIR]

Reads the layout of doc/DESIGN.md, "Experiment layout" (dispatch.results.layout):
  EXP_ROOT/<system>/scoring_<test_set>/per_utt.csv, summary.json   (from dispatch.bin.score)
  EXP_ROOT/<system>/model_stats.json                               (from dispatch.bin.model_stats)
Rows: noisy, teacher, the no-KD student, every kd_* system (sorted), then published rows.
For each KD student, the difference from the no-KD student is the mean over utterances matched by
id, with a 95 % paired-bootstrap interval (``--resamples`` resamples, fixed ``--seed``); ``*`` marks
intervals that exclude 0.  A missing file gives ``—`` cells and a one-line warning, never a crash.
A system trained on several seeds (``<system>_seed<N>`` folders, driver option ``--seeds``) is one row:
mean over seeds ± sample std across seeds, and a two-level (seeds, then utterances) paired bootstrap
for its Δ; see dispatch.metrics.seeds.  With one run per system the output is as without seeds.
The plots: the KD gains with their intervals, and the best KD student's per-utterance Δ against
the no-KD student's score (dispatch.results.plots).
Outputs go to ``--out_dir`` (default: the folder holding EXP_ROOT, i.e. the recipe folder).
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
