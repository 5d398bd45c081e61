#!/usr/bin/env python3
"""Teacher-output cache: run the frozen teacher once per training utterance and store its estimate.

    python -m dispatch.bin.cache_teacher --teacher_config T.yaml --teacher_model_file T.pth \
        --data_dir dump/raw/train --out_dir exp/teacher/cache_train \
        [--ngpu 0] [--batch_size 1] [--nj 1] [--dtype float32|float16]

Writes ``OUT/teacher.ark`` (``teacher.JOB.ark`` with ``--nj`` > 1), ``OUT/teacher1.scp``,
``OUT/teacher1_shape`` and ``OUT/cache_info.json`` (sizes, audio hours, MB per hour, wall time).
``--dtype float16`` halves the size (115 MB per hour of 16 kHz audio instead of 230 MB).
KD training reads the cache as one more data stream::

    --train_data_path_and_name_and_type OUT/teacher1.scp,teacher_ref1,kaldi_ark

See ``dispatch.models.teacher_cache`` for the storage, the parallel writing and the start-up checks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from dispatch.models.teacher import DistillSetupError
from dispatch.models.teacher_cache import STORAGE_DTYPES, CacheError, cache_teacher


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_config", required=True, help="the teacher's config.yaml")
    parser.add_argument("--teacher_model_file", required=True, help="the teacher's .pth")
    parser.add_argument("--data_dir", required=True, help="train data dir (wav.scp)")
    parser.add_argument("--out_dir", required=True, help="where teacher.ark/teacher1.scp go")
    parser.add_argument("--ngpu", type=int, default=0, help="0: CPU, 1: the first GPU")
    parser.add_argument("--batch_size", type=int, default=1,
                        help="utterances per forward pass (1 is exact; larger zero-pads)")
    parser.add_argument("--nj", type=int, default=1,
                        help="parallel writer processes, each with its own ark")
    parser.add_argument("--dtype", choices=STORAGE_DTYPES, default="float32",
                        help="storage of the estimates (float16: half the disk)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> int:
    args = get_parser().parse_args(cmd)
    try:
        count = cache_teacher(args.teacher_config, args.teacher_model_file, args.data_dir,
                              args.out_dir, args.ngpu, args.batch_size, args.nj, args.dtype)
    except (DistillSetupError, CacheError) as exc:
        print(f"cache_teacher: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"cache_teacher: {count} utterances -> {Path(args.out_dir) / 'teacher1.scp'}")
    return count


if __name__ == "__main__":
    main()
