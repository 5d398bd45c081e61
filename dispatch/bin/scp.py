"""scp helpers for recipes: split, filter, check order, validate a data dir.

    python -m dispatch.bin.scp split IN OUT1 [OUT2 ...]          # contiguous parts, by utterance
    python -m dispatch.bin.scp filter IDLIST IN [--exclude] [--out OUT]   # stdout without --out
    python -m dispatch.bin.scp merge OUT IN1 [IN2 ...]           # concatenate, sort, unique ids
    python -m dispatch.bin.scp check-sorted FILE [FILE ...]       # LC_ALL=C sorted and unique
    python -m dispatch.bin.scp validate DATA_DIR [--no_check_files]

Exit status 1 with one line per problem on stderr when something is wrong.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from dispatch.data.scp import (
    DataError,
    filter_entries,
    format_scp,
    order_problems,
    read_id_list,
    read_scp,
    split_entries,
    validate_data_dir,
    write_scp,
)


def get_parser() -> argparse.ArgumentParser:
    """Parser with one sub-command per helper."""
    parser = argparse.ArgumentParser(prog="python -m dispatch.bin.scp", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("split", help="split an scp into contiguous parts, one per output file")
    p.add_argument("scp", help="the scp file to split")
    p.add_argument("outputs", nargs="+", help="one output file per part")
    p = sub.add_parser("merge", help="concatenate scp files into one sorted scp (ids must be unique)")
    p.add_argument("out", help="the merged scp file")
    p.add_argument("inputs", nargs="+", help="scp files to merge (ids must not repeat)")
    p = sub.add_parser("filter", help="keep the entries whose id is in IDLIST (first field of each line)")
    p.add_argument("id_list", help="file whose first field per line is a kept id")
    p.add_argument("scp", help="the scp file to filter")
    p.add_argument("--exclude", action="store_true", help="keep the entries NOT in IDLIST")
    p.add_argument("--out", default=None, help="output file (atomic write); default stdout")
    p = sub.add_parser("check-sorted", help="check LC_ALL=C order and unique ids")
    p.add_argument("files", nargs="+", help="Kaldi-style files to check")
    p = sub.add_parser("validate", help="report every problem of a data dir at once")
    p.add_argument("data_dir", help="the data dir to validate")
    p.add_argument("--no_check_files", action="store_true", help="do not check that audio files exist")
    return parser


def main(cmd: list[str] | None = None) -> int:
    """Run one helper; returns the exit status."""
    args = get_parser().parse_args(cmd)
    try:
        if args.command == "split":
            parts = split_entries(read_scp(args.scp), len(args.outputs))
            for out, part in zip(args.outputs, parts):
                write_scp(out, part, sort=False)
            return 0
        if args.command == "merge":
            merged = [e for f in args.inputs for e in read_scp(f)]
            counts = Counter(e[0] for e in merged)
            dups = sorted(i for i, c in counts.items() if c > 1)
            if dups:
                raise DataError(f"duplicate ids across {', '.join(args.inputs)}: {', '.join(dups[:5])}")
            write_scp(args.out, merged, sort=True)
            return 0
        if args.command == "filter":
            kept = filter_entries(read_scp(args.scp), read_id_list(args.id_list), args.exclude)
            if args.out:
                write_scp(args.out, kept, sort=False)
            else:
                sys.stdout.write(format_scp(kept))
            return 0
        if args.command == "check-sorted":
            problems = [p for f in args.files for p in order_problems(read_scp(f), f)]
        else:
            problems = [f"{args.data_dir}: {p}" for p in
                        validate_data_dir(args.data_dir, check_files=not args.no_check_files)]
    except DataError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    for p in problems:
        print(f"ERROR: {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
