"""Stage 2 data check: report every bad utterance of a data dir in one pass, optionally fix them.

    python -m dispatch.bin.check_data DATA_DIR [--fs 16000] [--auto_fix] [--out_dir DIR]
        [--length_tolerance 0.01] [--clip_level 0.999] [--clip_fraction 0.01] [--nj 1]

Without --auto_fix, any problem prints the list and exits 1 (nothing is written). When the data is
clean, or with --auto_fix, the checked data dir is written to --out_dir (always, even when nothing
changed: untouched files keep their original paths), with fixed audio under OUT_DIR/audio/ and every
change logged to stdout and OUT_DIR/check_data.log. See dispatch/data/check.py for the checks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dispatch.data.check import check_data_dir, raise_if_fatal, report, write_checked_dir
from dispatch.data.scp import DataError, atomic_write_text


def get_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", help="Kaldi-style data dir (wav.scp, spk1.scp, utt2spk, ...)")
    p.add_argument("--fs", type=int, default=16000, help="expected sample rate in Hz")
    p.add_argument("--auto_fix", action="store_true", help="resample, downmix, trim or drop instead of failing")
    p.add_argument("--out_dir", default=None, help="write the checked (and fixed) data dir here")
    p.add_argument("--length_tolerance", type=float, default=0.01,
                   help="largest noisy/clean length difference in seconds that is not an error")
    p.add_argument("--max_trim", type=float, default=0.02,
                   help="--auto_fix trims files of an utterance to the shortest when they differ by at "
                   "most this many seconds or --max_trim_ratio of the longer file (whichever is "
                   "larger), and drops the utterance when they differ by more")
    p.add_argument("--max_trim_ratio", type=float, default=0.01,
                   help="see --max_trim: the difference allowed as a fraction of the longer file")
    p.add_argument("--clip_level", type=float, default=0.999, help="|x| at or above this counts as clipped")
    p.add_argument("--clip_fraction", type=float, default=0.01, help="more clipped samples than this is an error")
    p.add_argument("--nj", type=int, default=1, help="parallel processes for reading audio")
    return p


def main(cmd: list[str] | None = None) -> int:
    """Check (and fix); returns the exit status."""
    a = get_parser().parse_args(cmd)
    if a.auto_fix and not a.out_dir:
        print("ERROR: --auto_fix needs --out_dir (fixed files are never written over the input)", file=sys.stderr)
        return 1
    try:
        result = check_data_dir(a.data_dir, a.fs, a.length_tolerance, a.clip_level, a.clip_fraction, max(1, a.nj),
                                a.max_trim, a.max_trim_ratio)
        raise_if_fatal(result)
    except DataError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    lines = report(result, a.auto_fix)
    if result.issues and not a.auto_fix:
        print(f"{a.data_dir}: {len(result.issues)} problem(s); fix the data or rerun with --auto_fix:", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    if not result.keep:
        print(f"ERROR: {a.data_dir}: no utterance is left after dropping the bad ones", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
        return 1
    changes: list[str] = []
    if a.out_dir:
        changes = write_checked_dir(result, a.data_dir, a.out_dir, a.fs)
        log = [f"check_data {a.data_dir} -> {a.out_dir} (fs {a.fs})"] + lines + result.notes + changes
        log.append(f"kept {len(result.keep)} utterances")
        atomic_write_text(Path(a.out_dir) / "check_data.log", "\n".join(log) + "\n")
    for line in lines + result.notes + changes:
        print(line)
    print(f"{a.data_dir}: {len(result.keep)} utterances OK"
          + (f", {len(result.issues)} problem(s) fixed" if result.issues else "")
          + (f" -> {a.out_dir}" if a.out_dir else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
