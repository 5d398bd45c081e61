"""Is a scoring folder complete? Reasons not to put a system's scores into RESULTS.md.

``dispatch.bin.score`` writes ``per_utt.csv`` and ``summary.json`` also when it is interrupted, then
with ``"partial": true``; a file can also be cut short by a full disk or edited by hand. A scoring
is trusted only when all of these hold:

* ``summary.json``, when present, reads as a JSON object and is not marked ``partial``;
* every ``per_utt.csv`` row has as many fields as the header, and the header starts with ``utt_id``;
* the utterances listed (scored or failed) number at least those of the test set, counted from
  the reference scp recorded in ``summary.json`` (``ref_scp``), when that file can be found, and
  agree with the ``num_utts`` that ``summary.json`` states.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import List, Optional, Sequence


def _count_lines(path: Path) -> Optional[int]:
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for line in f if line.strip())
    except (OSError, UnicodeDecodeError):
        return None


def _find(path: str, bases: Sequence[Path]) -> Optional[Path]:
    """``path`` as given (absolute or relative to the working directory), else under ``bases``."""
    candidates = [Path(path)] + [Path(b) / path for b in bases if not Path(path).is_absolute()]
    return next((p for p in candidates if p.is_file()), None)


def scoring_problems(score_dir: Path, bases: Sequence[Path] = ()) -> List[str]:
    """Short reasons why ``score_dir`` (``per_utt.csv`` + ``summary.json``) cannot be trusted.

    An empty list means complete. ``bases`` are folders to resolve a relative ``ref_scp`` against
    (the recipe folder: the driver scores from there).
    """
    score_dir = Path(score_dir)
    per_utt, summary_file = score_dir / "per_utt.csv", score_dir / "summary.json"
    problems: List[str] = []
    summary: dict = {}
    if summary_file.is_file():  # (absent: per_utt.csv alone is judged)
        try:
            loaded = json.loads(summary_file.read_text(encoding="utf-8"))
            summary = loaded if isinstance(loaded, dict) else {}
            if not summary:
                problems.append("summary.json is not a JSON object")
        except (OSError, ValueError):
            problems.append("summary.json is malformed")
    if summary.get("partial"):
        problems.append(f"partial scoring ({summary.get('num_utts', '?')} utterances, interrupted)")

    listed: Optional[int] = None
    if per_utt.is_file():
        try:
            with open(per_utt, encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            rows = None
        if not rows or not rows[0] or rows[0][0] != "utt_id":
            problems.append("per_utt.csv has no utt_id header")
        else:
            bad = [i + 2 for i, row in enumerate(rows[1:]) if len(row) != len(rows[0]) or not row[0]]
            if bad:
                problems.append(f"per_utt.csv is malformed ({len(bad)} short or broken rows, "
                                f"first at line {bad[0]})")
            listed = len(rows) - 1
    num_utts = summary.get("num_utts")
    if listed is not None and isinstance(num_utts, int) and listed != num_utts:
        problems.append(f"per_utt.csv lists {listed} utterances, summary.json says {num_utts}")
    covered = listed if listed is not None else num_utts
    ref = _find(str(summary["ref_scp"]), bases) if summary.get("ref_scp") else None
    expected = _count_lines(ref) if ref is not None else None
    if isinstance(covered, int) and expected is not None and covered < expected:
        problems.append(f"covers {covered} of the {expected} test utterances")
    return problems
