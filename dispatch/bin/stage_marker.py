#!/usr/bin/env python3
"""Stage markers for the shell driver: is a stage output up to date with its inputs? / mark it done.

    python -m dispatch.bin.stage_marker check DIR [--files F ...] [--opts="OPTIONS"]   # exit 0: fresh
    python -m dispatch.bin.stage_marker mark  DIR [--files F ...] [--opts="OPTIONS"]

``check`` exits 1, with one line on stderr saying why, when DIR must be (re)made.
"""

import argparse
import sys
from typing import Optional, Sequence

from dispatch.utils.stage_marker import MARKER, check, mark


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("check", "mark"),
                        help="check: exit 0 when DIR is up to date, else 1; mark: record DIR as done")
    parser.add_argument("dir", help="the stage output directory that holds the marker")
    parser.add_argument("--files", nargs="+", action="extend", default=[],
                        help="input files the output is made from (hashed; links are followed); "
                        "may be given more than once")
    parser.add_argument("--opts", default="",
                        help="the options that shape the output, one string compared as it is "
                        "(write --opts=\"...\" when it starts with a dash)")
    parser.add_argument("--name", default=MARKER, help="marker file name inside DIR")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    if args.action == "mark":
        mark(args.dir, args.files, [args.opts] if args.opts else [], args.name)
        return
    fresh, reason = check(args.dir, args.files, [args.opts] if args.opts else [], args.name)
    if not fresh and reason != "not made yet":
        print(f"stage_marker: {args.dir}: redoing, {reason}", file=sys.stderr)
    sys.exit(0 if fresh else 1)


if __name__ == "__main__":
    main()
