#!/usr/bin/env python3
"""Job logs for the recipes (dispatch.recipe.joblog).

    python -m dispatch.bin.job_log errors LOG [LOG ...]     why each job failed: its last error lines
    COMMAND 2> >(python -m dispatch.bin.job_log filter >&2)  the console without known-harmless noise
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from dispatch.recipe.joblog import error_excerpt, filter_stream


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    errors = sub.add_parser("errors", help="print the lines of each log that say why it failed")
    errors.add_argument("logs", nargs="+", help="job logs")
    errors.add_argument("--max_lines", type=int, default=6, help="lines per log at most")
    sub.add_parser("filter", help="copy stdin to stdout without nltk notes, FutureWarnings and "
                   "other known-harmless dependency noise")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    if args.action == "filter":
        filter_stream(sys.stdin, sys.stdout)
        return
    for log in args.logs:
        path = Path(log)
        if not path.is_file():
            print(f"  ({log} was not written)")
            continue
        with path.open(encoding="utf-8", errors="replace") as f:
            lines = error_excerpt(f, args.max_lines)
        print(f"  last error lines of {log}:")
        for line in lines:
            print(f"    {line}")


if __name__ == "__main__":
    main()
