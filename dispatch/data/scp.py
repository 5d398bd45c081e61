"""Kaldi-style ``key value`` files (wav.scp, spk1.scp, utt2spk, spk2utt): read, write atomically, split,
filter, check order, and validate a whole data directory.

Standard library only, so the shell helpers in ``utils/`` run with any Python 3.
Order is LC_ALL=C order: Python's ``str`` order equals the byte order of the UTF-8 encoding.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

from dispatch.utils.io import atomic_write_text  # noqa: F401  (re-exported)


class DataError(ValueError):
    """Bad input data; the message is one line that says what is wrong and how to fix it."""


Entry = tuple[str, str]  # (key, value)


def read_scp(path: str | os.PathLike) -> list[Entry]:
    """Read ``key value`` lines in file order (duplicates kept); the value is the rest of the line.

    Raises DataError for a missing file or a line without a value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    entries: list[Entry] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            if len(parts) < 2:
                raise DataError(f"{path}:{n}: expected 'key value', got '{line}'")
            entries.append((parts[0], parts[1]))
    return entries


def read_scp_dict(path: str | os.PathLike) -> dict[str, str]:
    """``read_scp`` as an ordered ``{utt_id: value}``; a repeated id is a DataError naming it."""
    entries: dict[str, str] = {}
    for key, value in read_scp(path):
        if key in entries:
            raise DataError(f"{path}: utterance id '{key}' appears twice; ids must be unique")
        entries[key] = value
    return entries


def pair_by_id(noisy: dict, clean: dict, empty: str, unpaired: Callable[[list[str]], str]
               ) -> list[tuple[str, Path, Path]]:
    """(utt_id, noisy, clean) sorted by id; DataError(``empty``) when there is no noisy file,
    DataError(``unpaired(ids)``) when some id lacks its noisy or clean partner."""
    if not noisy:
        raise DataError(empty)
    lonely = sorted(set(noisy) ^ set(clean))
    if lonely:
        raise DataError(unpaired(lonely))
    return [(u, noisy[u], clean[u]) for u in sorted(noisy)]


def format_scp(entries: Iterable[Entry]) -> str:
    """Lines ``key value\\n``."""
    return "".join(f"{k} {v}\n" for k, v in entries)


def write_scp(path: str | os.PathLike, entries: Iterable[Entry], sort: bool = True) -> None:
    """Write entries atomically, sorted by key (LC_ALL=C order) unless ``sort`` is False."""
    entries = list(entries)
    if sort:
        entries.sort(key=lambda e: e[0])
    atomic_write_text(path, format_scp(entries))


def order_problems(entries: Sequence[Entry], name: str) -> list[str]:
    """Problems with key order and uniqueness: one message per unsorted position and duplicate key."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, (key, _) in enumerate(entries):
        if key in seen:
            problems.append(f"{name}: duplicate id '{key}' (entries {seen[key] + 1} and {i + 1})")
        else:
            seen[key] = i
        if i > 0 and key < entries[i - 1][0]:
            problems.append(
                f"{name}: not sorted at entry {i + 1}: '{key}' after '{entries[i - 1][0]}' "
                "(sort with LC_ALL=C sort -k1,1)"
            )
    return problems


def split_entries(entries: Sequence[Entry], n: int) -> list[list[Entry]]:
    """Split into ``n`` contiguous parts whose sizes differ by at most one."""
    if n < 1:
        raise DataError(f"cannot split into {n} parts; give at least one output")
    if n > len(entries):
        raise DataError(f"cannot split {len(entries)} entries into {n} parts; use at most {len(entries)} jobs")
    base, extra = divmod(len(entries), n)
    parts, start = [], 0
    for i in range(n):
        size = base + (1 if i < extra else 0)
        parts.append(list(entries[start:start + size]))
        start += size
    return parts


def filter_entries(entries: Sequence[Entry], keys: Iterable[str], exclude: bool = False) -> list[Entry]:
    """Entries whose key is in ``keys`` (or not in it, with ``exclude``), in their original order."""
    wanted = set(keys)
    return [e for e in entries if (e[0] in wanted) != exclude]


def read_id_list(path: str | os.PathLike) -> list[str]:
    """First field of every non-empty line (an id list, or any Kaldi file)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: id list not found")
    with open(path, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def utt2spk_to_spk2utt(utt2spk: Sequence[Entry]) -> list[Entry]:
    """spk2utt entries (speakers sorted, utterances sorted within a speaker) from utt2spk."""
    spk2utts: dict[str, list[str]] = {}
    for utt, spk in utt2spk:
        spk2utts.setdefault(spk, []).append(utt)
    return [(spk, " ".join(sorted(utts))) for spk, utts in sorted(spk2utts.items())]


REQUIRED_FILES = ("wav.scp", "spk1.scp", "utt2spk", "spk2utt")


def audio_scp_names(data_dir: str | os.PathLike) -> list[str]:
    """The audio scp files of a data dir: wav.scp, spk*.scp and noise*.scp that exist (wav.scp first)."""
    data_dir = Path(data_dir)
    names = ["wav.scp"] + sorted(
        p.name for p in data_dir.glob("*.scp") if p.name.startswith(("spk", "noise")) and p.name != "wav.scp"
    )
    return [n for n in names if (data_dir / n).is_file() or n == "wav.scp"]


def _id_mismatch(name_a: str, ids_a: set[str], name_b: str, ids_b: set[str]) -> list[str]:
    """Messages for ids in one file and not the other (up to 3 examples each)."""
    problems = []
    for (na, a), (nb, b) in (((name_a, ids_a), (name_b, ids_b)), ((name_b, ids_b), (name_a, ids_a))):
        missing = sorted(a - b)
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            problems.append(f"{len(missing)} ids in {na} are missing from {nb}: {', '.join(missing[:3])}{more}")
    return problems


def validate_data_dir(data_dir: str | os.PathLike, check_files: bool = True) -> list[str]:
    """Every structural problem of a Kaldi-style enhancement data dir, as one message each.

    Checks: required files exist and parse; every file sorted and unique; the same ids in
    wav.scp, spk*.scp, noise*.scp and utt2spk; spk2utt consistent with utt2spk; with
    ``check_files``, that every audio path in the scp files exists.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return [f"{data_dir}: not a directory"]
    problems: list[str] = []
    tables: dict[str, list[Entry]] = {}
    names = list(dict.fromkeys(list(REQUIRED_FILES) + audio_scp_names(data_dir)))
    for name in names:
        path = data_dir / name
        if not path.is_file():
            if name in REQUIRED_FILES:
                problems.append(f"{name}: missing (required: {', '.join(REQUIRED_FILES)})")
            continue
        try:
            tables[name] = read_scp(path)
        except DataError as e:
            problems.append(str(e))
            continue
        problems += order_problems(tables[name], name)
    # Same ids everywhere (spk2utt is keyed by speaker, so it is compared separately).
    keyed = [n for n in tables if n != "spk2utt"]
    if keyed:
        ref = "wav.scp" if "wav.scp" in tables else keyed[0]
        ref_ids = {k for k, _ in tables[ref]}
        for name in keyed:
            if name != ref:
                problems += _id_mismatch(ref, ref_ids, name, {k for k, _ in tables[name]})
    if "utt2spk" in tables and "spk2utt" in tables:
        expected = dict(utt2spk_to_spk2utt(tables["utt2spk"]))
        actual = {spk: " ".join(sorted(utts.split())) for spk, utts in tables["spk2utt"]}
        bad = sorted(s for s in set(expected) | set(actual) if expected.get(s) != actual.get(s))
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            problems.append(
                f"spk2utt does not match utt2spk for {len(bad)} speakers ({', '.join(bad[:3])}{more}); "
                "regenerate it from utt2spk"
            )
    if check_files:
        for name in (n for n in tables if n.endswith(".scp")):
            missing = [(k, v) for k, v in tables[name] if not Path(v).is_file()]
            if missing:
                k, v = missing[0]
                problems.append(f"{name}: {len(missing)} audio files not found, e.g. {k} -> {v}")
    return problems
