"""Stage markers that remember what a stage output was made from.

A finished stage output ``DIR`` holds a marker file (``DIR/.done`` by default): JSON with the
SHA-256 and size of every input file it was made from (a model file, its config, the scp files;
links are followed, so ``valid.*.best.pth`` is hashed as the epoch file it points to) and the
options that shaped it. The output is *fresh* when the marker exists and the same inputs hash the
same with the same options; a retrained model therefore invalidates its inference, which in turn
(through the inference marker, listed as an input of scoring) invalidates its scores, while an
unchanged system is not touched again.

Standard library only: the shell driver calls it for every stage output (``dispatch.bin.stage_marker``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from dispatch.utils.io import atomic_write_text

MARKER = ".done"
VERSION = 1


def file_digest(path: str) -> Optional[Dict[str, object]]:
    """``{"sha256": ..., "size": ...}`` of a file's content (links followed); None if missing."""
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            size = f.tell()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return {"sha256": digest.hexdigest(), "size": size}


def fingerprint(files: Sequence[str], options: Sequence[str]) -> Dict[str, object]:
    """What an output is made from: each input file's digest (by the path given) and the options."""
    return {"version": VERSION, "files": {str(p): file_digest(str(p)) for p in files},
            "options": [str(o) for o in options]}


def marker_path(directory: os.PathLike, name: str = MARKER) -> Path:
    return Path(directory) / name


def check(directory: os.PathLike, files: Sequence[str] = (), options: Sequence[str] = (),
          name: str = MARKER) -> Tuple[bool, str]:
    """(fresh, reason): is ``directory``'s marker there and made from these inputs and options?

    With no files and no options only the marker's presence counts (a stage without inputs).
    """
    path = marker_path(directory, name)
    if not path.is_file():
        return False, "not made yet"
    if not files and not options:
        return True, "done"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict) or recorded.get("version") != VERSION:
        return False, f"{path} records no inputs (made by an older version)"
    now = fingerprint(files, options)
    if recorded.get("options") != now["options"]:
        return False, "its options changed"
    old = recorded.get("files") or {}
    for p, digest in now["files"].items():
        if digest is None:
            return False, f"input {p} is missing"
        if old.get(p) != digest:
            return False, f"input {p} changed since it was made"
    return True, "up to date"


def mark(directory: os.PathLike, files: Sequence[str] = (), options: Sequence[str] = (),
         name: str = MARKER) -> Path:
    """Write ``directory``'s marker (atomically) for these inputs and options."""
    path = marker_path(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(fingerprint(files, options), indent=1, sort_keys=True) + "\n")
    return path
