#!/usr/bin/env python3
"""Stage-2 operations on a checked data dir (dispatch.data.datadir_ops), as in ESPnet's enh.sh.

    python -m dispatch.bin.datadir filter_durations DIR --min_wav_duration 0.1 --max_wav_duration 20
    python -m dispatch.bin.datadir speed_perturb DIR OUT_DIR --factors 0.9 1.0 1.1
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from dispatch.data.datadir_ops import filter_by_duration, speed_perturb
from dispatch.data.scp import DataError


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    dur = sub.add_parser("filter_durations", help="drop utterances that are too short or too long, in place")
    dur.add_argument("dir", help="data dir (wav.scp, spk1.scp, utt2spk, ...)")
    dur.add_argument("--min_wav_duration", type=float, default=0.1, help="shortest kept mixture (s)")
    dur.add_argument("--max_wav_duration", type=float, default=20.0,
                     help="longest kept mixture (s); 0 keeps every length")
    sp = sub.add_parser("speed_perturb", help="a new data dir with every utterance at every speed")
    sp.add_argument("dir", help="data dir to perturb")
    sp.add_argument("out_dir", help="where the perturbed data dir and its audio go")
    sp.add_argument("--factors", type=float, nargs="+", required=True,
                    help="speed factors, e.g. 0.9 1.0 1.1 (1.0 keeps the originals' ids)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    try:
        if args.action == "filter_durations":
            counts = filter_by_duration(args.dir, args.min_wav_duration, args.max_wav_duration)
            print(f"datadir: {args.dir}: kept {counts['kept']} utterances, dropped "
                  f"{counts['too_short']} shorter than {args.min_wav_duration} s and "
                  f"{counts['too_long']} longer than {args.max_wav_duration} s", file=sys.stderr)
        else:
            count = speed_perturb(args.dir, args.out_dir, args.factors)
            print(f"datadir: {args.out_dir}: {count} utterances at speeds {args.factors}", file=sys.stderr)
    except DataError as exc:
        print(f"datadir: error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
