"""What every corpus-preparation entry point (``dispatch.bin.prep_*``) shares: reading comma lists
of numbers from an option, and turning a DataError into one ``ERROR:`` line and exit status 1."""
from __future__ import annotations

import sys
from typing import Callable, Dict

from dispatch.data.scp import DataError


def comma_numbers(text: str, option: str, n: int, kind: type = float) -> list:
    """``n`` comma-separated numbers of type ``kind``, or DataError naming the option."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != n:
        count = ("one", "two", "three", "four")[n - 1] if 1 <= n <= 4 else str(n)
        raise DataError(f"{option} needs {n} numbers, written as {count} comma-separated values; "
                        f"got '{text}'")
    return values


def run_preparation(corpus: str, data_dir: str, prepare: Callable[[], Dict[str, int]]) -> int:
    """Run ``prepare`` (returns utterances per set); print the sizes, or the DataError as one line.

    Returns the exit status: 0, or 1 after a DataError.
    """
    try:
        sizes = prepare()
    except DataError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    print(f"{corpus} in {data_dir}: " + ", ".join(f"{s} {n}" for s, n in sizes.items()) + " utterances")
    return 0
