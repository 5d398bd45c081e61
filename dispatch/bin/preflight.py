#!/usr/bin/env python3
"""Checks the stage driver runs before training (dispatch.recipe.preflight).

    python -m dispatch.bin.preflight check --ngpu 1 --fs 16000 --data dump/raw/train \\
        --shape_file dump/stats/train/speech_mix_shape --data dump/raw/valid --shape_file ... \\
        --job teacher_args conf/teacher.yaml --job_args="--max_epoch 5" [--job ... --job_args=...]
    python -m dispatch.bin.preflight train_dir exp/teacher --config conf/teacher.yaml \\
        --opts="--max_epoch 5" [--force true] [--resume true]

``check`` prints every problem as one line ``preflight: error: ...`` and exits 2 when there is one;
``train_dir`` refuses (exit 2) a finished or started training dir whose options changed, unless
``--force true``, and clears it for a fresh start under ``--force true`` without ``--resume true``.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from dispatch.recipe.preflight import PreflightError, check_train_dir, preflight_problems

TRUE_FALSE = ("true", "false")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="GPUs and chunk lengths, before any training job")
    check.add_argument("--ngpu", type=int, default=0, help="GPUs each training job asks for")
    check.add_argument("--train_cmd", default="", help="the job runner command (slurm: GPU count "
                       "not checked here)")
    check.add_argument("--fs", type=int, default=16000, help="sample rate of the data (Hz)")
    check.add_argument("--data", action="append", default=[],
                       help="training data dir, then the validation data dir (wav.scp inside)")
    check.add_argument("--shape_file", action="append", default=[],
                       help="the shape file of each --data, in the same order (optional)")
    check.add_argument("--job", nargs=2, action="append", default=[], metavar=("ROLE_OPTION", "CONFIG"),
                       help="a training job: the driver option that holds its own arguments "
                       "(without dashes, e.g. teacher_args) and its config")
    check.add_argument("--job_args", action="append", default=[],
                       help="the extra arguments of each --job as one string, in the same order "
                       "(write --job_args=\"...\")")
    check.add_argument("--teacher_cache", choices=TRUE_FALSE, default="false",
                       help="whether KD students train from the teacher-output cache")
    check.add_argument("--speed_perturb_factors", default="", help="the driver's speed perturbation")
    train = sub.add_parser("train_dir", help="changed options of a training dir; --force resets")
    train.add_argument("dir", help="the training output dir (exp/<system>)")
    train.add_argument("--config", required=True, help="the job's training config")
    train.add_argument("--opts", default="", help="the job's options as one string "
                       "(write --opts=\"...\" when it starts with a dash)")
    train.add_argument("--force", choices=TRUE_FALSE, default="false",
                       help="true: accept changed options and retrain")
    train.add_argument("--resume", choices=TRUE_FALSE, default="false",
                       help="with --force true: continue from the last checkpoint instead of "
                       "starting from scratch")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    if args.action == "train_dir":
        try:
            note = check_train_dir(args.dir, args.config, args.opts, args.force == "true",
                                   args.resume == "true")
        except PreflightError as exc:
            print(f"preflight: error: {exc}", file=sys.stderr)
            sys.exit(2)
        if note:
            print(f"preflight: {note}", file=sys.stderr)
        return
    shapes = args.shape_file + [None] * (len(args.data) - len(args.shape_file))
    extra = args.job_args + [""] * (len(args.job) - len(args.job_args))
    jobs = [(f"--{role}", config, more) for (role, config), more in zip(args.job, extra)]
    errors, notes = preflight_problems(args.ngpu, args.train_cmd, args.fs, list(zip(args.data, shapes)),
                                       jobs, args.teacher_cache == "true",
                                       args.speed_perturb_factors)
    for note in notes:
        print(f"preflight: note: {note}", file=sys.stderr)
    for error in errors:
        print(f"preflight: error: {error}", file=sys.stderr)
    if errors:
        sys.exit(2)


if __name__ == "__main__":
    main()
