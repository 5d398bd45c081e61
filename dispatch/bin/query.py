"""What the recipe driver asks the library, answered on one line of stdout.

    python -m dispatch.bin.query files EXP_DIR FOLDER --inference_model NAME --teacher_model NAME
        -> CONFIG<TAB>MODEL<TAB>STOCK_CONFIG<TAB>STOCK_MODEL
           the trained pair of a run folder (config.yaml + its model file) and the pair that
           inference, scoring and the model figures load (a KD student's export, else the same);
           dispatch.results.layout.ExperimentLayout.model_files. Paths only: nothing needs to exist.
    python -m dispatch.bin.query teacher_cache KD_OVERLAY.yaml
        -> true | false
           whether a KD student of this overlay can train from the teacher cache: false when its
           loss taps the teacher's features (dispatch.kd.registry.needs_teacher_features, AT-KL).

A problem is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import yaml


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="question", required=True)
    files = sub.add_parser("files", help="a run folder's trained and stock (config, model) pairs")
    files.add_argument("exp_dir", type=Path, help="the experiment folder (exp/ or exp/<tag>)")
    files.add_argument("folder", help="the run folder, e.g. teacher, kd_l2_mag_seed1")
    files.add_argument("--inference_model", required=True,
                       help="model file name of every student (the driver's --inference_model)")
    files.add_argument("--teacher_model", required=True,
                       help="model file name of the teacher (the driver's --teacher_model)")
    cache = sub.add_parser("teacher_cache", help="can a KD overlay train from the teacher cache?")
    cache.add_argument("overlay", type=Path, help="a KD overlay (kd_loss, kd_loss_conf, kd_weight)")
    return parser


def _teacher_cache(overlay: Path) -> str:
    from dispatch.kd.registry import needs_teacher_features

    conf = yaml.safe_load(overlay.read_text(encoding="utf-8")) or {}
    # no kd_loss: the task's default, output KD (l2_mag), which needs no features
    needs = "kd_loss" in conf and needs_teacher_features(conf["kd_loss"],
                                                          **(conf.get("kd_loss_conf") or {}))
    return "false" if needs else "true"


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    try:
        if args.question == "files":
            from dispatch.results.layout import ExperimentLayout

            paths = ExperimentLayout(args.exp_dir).model_files(args.folder, args.inference_model,
                                                               args.teacher_model)
            print("\t".join(str(p) for p in paths))
        else:
            print(_teacher_cache(args.overlay))
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        print(f"query: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
