#!/usr/bin/env python3
"""The prepared GPU check: paper-size KD training steps, STFT paths, teacher cache, 200 real steps.

    tools/gpu_check.sh [--smoke] [--out_dir DIR]      (or python -m dispatch.bin.gpu_check ...)

Prints one table (and writes DIR/gpu_check.{txt,json}); see ``dispatch.perf.gpu_check`` for what
is measured. On a machine without a CUDA GPU it says so in one line and exits 0. ``--smoke`` runs
the same code at a tiny size on the CPU (the CI test), in well under a minute.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="the same code at a tiny size on the CPU (CI self-test)")
    parser.add_argument("--out_dir", default=None,
                        help="where the report and the training run go (default: exp/gpu_check, "
                             "exp/gpu_check_smoke with --smoke)")
    parser.add_argument("--conf_dir", default=None,
                        help="folder with the paper-size configs (default: "
                             "egs/dns_ins20/enh_distill1/conf/tuning)")
    parser.add_argument("--skip_train", action="store_true",
                        help="leave out the real training run (timing table only)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(cmd)
    from dispatch.perf.gpu_check import run_check

    run_check(smoke=args.smoke, out_dir=args.out_dir, conf_dir=args.conf_dir,
              skip_train=args.skip_train)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
