"""Data checks before training (stage 2): every problem of a data dir in one pass, and optional fixes.

Checked, per data dir: wav.scp and spk1.scp present; every scp/utt2spk line well formed, sorted
(LC_ALL=C) and unique; the same ids in wav.scp, spk*.scp, noise*.scp and utt2spk; spk2utt matching
utt2spk. Per audio file: exists and is readable; sample rate == fs; mono; no NaN/Inf; not all zero;
not heavily clipped (more than ``clip_fraction`` of the samples at |x| >= ``clip_level``). Per
utterance: every file within ``length_tolerance`` seconds of wav.scp's duration.

Fixes (``auto_fix``): resample to fs (scipy resample_poly), downmix to mono, trim all files of an
utterance to the shortest when they differ by at most ``max_trim`` seconds or ``max_trim_ratio`` of
the longer one (see ``trim_limit``), sort, keep the first of duplicate ids, regenerate
utt2spk/spk2utt, or drop the utterance (missing/unreadable/NaN/Inf/all-zero/clipped file, ids missing
from a file, malformed line, lengths further apart than the trim limit: not the same recording). Length differences within the tolerance are not errors; they are trimmed in the output dir
in every mode. A file that needs no change keeps its original path in the output dir.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from math import gcd
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf

from dispatch.data.audio import read_mono, write_wav
from dispatch.data.scp import DataError, Entry, atomic_write_text, audio_scp_names, utt2spk_to_spk2utt, write_scp

DROP, SORT, DEDUP, REGEN, RESAMPLE, DOWNMIX, TRIM = "drop", "sort", "dedup", "regenerate", "resample", "downmix", "trim"


@dataclass
class Issue:
    """One problem: the utterance (or '-' for a whole file), the file, why, and the fix."""

    utt: str
    where: str
    reason: str
    fix: str
    kind: str = ""   # short label for the summary (default: the reason)

    def line(self, fixing: bool) -> str:
        """Printable form, with the fix when fixing."""
        return f"{self.utt}  {self.where}: {self.reason}" + (f"  -> {self.fix}" if fixing else "")


@dataclass
class FileInfo:
    """What reading one audio file found."""

    error: str = ""          # missing / unreadable / NaN / zero / clipped (all lead to a drop)
    sr: int = 0
    channels: int = 0
    frames: int = 0
    subtype: str = ""


@dataclass
class CheckResult:
    """Everything the check found, and the data needed to write the output dir."""

    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)                       # utterance ids kept, sorted
    tables: dict[str, dict[str, str]] = field(default_factory=dict)    # file name -> {utt: value}
    infos: dict[tuple[str, str], FileInfo] = field(default_factory=dict)


def inspect_file(job: tuple[str, float, float]) -> FileInfo:
    """Read one file fully and describe it (process-pool worker)."""
    path, clip_level, clip_fraction = job
    if path.endswith("|") or ".ark:" in path:
        return FileInfo(error=f"unsupported scp entry '{path}' (pipes and ark offsets are not supported)")
    if not os.path.isfile(path):
        return FileInfo(error=f"file not found: {path}")
    try:
        x, sr = sf.read(path, dtype="float32", always_2d=True)  # [L, C]
        subtype = sf.info(path).subtype
    except (RuntimeError, sf.LibsndfileError) as e:
        return FileInfo(error=f"unreadable: {path} ({e})")
    info = FileInfo(sr=sr, channels=x.shape[1], frames=x.shape[0], subtype=subtype)
    if x.size == 0:
        info.error = f"empty file: {path}"
    elif not np.all(np.isfinite(x)):
        info.error = f"NaN or Inf samples: {path}"
    elif not np.any(x):
        info.error = f"all-zero file: {path}"
    else:
        clipped = float(np.mean(np.abs(x) >= clip_level))
        if clipped > clip_fraction:
            info.error = f"heavy clipping: {100 * clipped:.1f}% of samples at |x| >= {clip_level}: {path}"
    return info


def _length_at(info: FileInfo, fs: int) -> int:
    """Samples after resampling to fs (resample_poly's output length)."""
    if info.sr == fs:
        return info.frames
    g = gcd(info.sr, fs)
    up, down = fs // g, info.sr // g
    return -(-info.frames * up // down)


def _read_lenient(path: Path, result: CheckResult) -> list[Entry]:
    """Entries of a key-value file; malformed lines become issues (dropped) instead of errors."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if len(parts) == 1:
                result.issues.append(Issue(parts[0], path.name, f"line {n} has no value", DROP, "malformed line"))
            elif parts:
                entries.append((parts[0], parts[1]))
    return entries


def trim_limit(seconds_a: float, seconds_b: float, max_trim: float = 0.02,
               max_trim_ratio: float = 0.01) -> float:
    """Largest length difference (s) that ``auto_fix`` trims: ``max_trim`` seconds or
    ``max_trim_ratio`` of the longer file, whichever is larger; beyond it the utterance is dropped."""
    return max(max_trim, max_trim_ratio * max(seconds_a, seconds_b))


def check_data_dir(data_dir: str | os.PathLike, fs: int = 16000, length_tolerance: float = 0.01,
                   clip_level: float = 0.999, clip_fraction: float = 0.01, nj: int = 1,
                   max_trim: float = 0.02, max_trim_ratio: float = 0.01) -> CheckResult:
    """Check a data dir; see the module docstring. Never raises for bad data, only reports it."""
    data_dir = Path(data_dir)
    result = CheckResult()
    if not data_dir.is_dir():
        result.fatal.append(f"{data_dir}: not a directory; run data preparation (stage 1) first")
        return result
    names = [n for n in audio_scp_names(data_dir) if (data_dir / n).is_file()]
    for required in ("wav.scp", "spk1.scp"):
        if required not in names:
            result.fatal.append(f"{data_dir}/{required}: missing; a data dir needs wav.scp (noisy) "
                                "and spk1.scp (clean)")
    if result.fatal:
        return result
    structural = names + (["utt2spk"] if (data_dir / "utt2spk").is_file() else [])
    for name in structural:
        entries = _read_lenient(data_dir / name, result)
        keys = [k for k, _ in entries]
        if keys != sorted(keys):
            result.issues.append(Issue("-", name, "not sorted (LC_ALL=C order)", SORT))
        for key, count in sorted(Counter(keys).items()):
            if count > 1:
                result.issues.append(Issue(key, name, f"duplicate id ({count} entries)",
                                           DEDUP + " (keep first)", "duplicate id"))
        table: dict[str, str] = {}
        for k, v in entries:
            table.setdefault(k, v)
        result.tables[name] = table
    if "utt2spk" not in result.tables:
        result.issues.append(Issue("-", "utt2spk", "missing", REGEN + " (utt -> utt)", "utt2spk missing"))
    all_ids = sorted(set().union(*(set(t) for t in result.tables.values())))
    malformed = {i.utt for i in result.issues if i.fix == DROP}
    ok_ids = []
    for utt in all_ids:
        absent = [n for n in structural if utt not in result.tables[n]]
        for n in absent:
            result.issues.append(Issue(utt, n, "id missing from this file (present in others)", DROP))
        if not absent and utt not in malformed:
            ok_ids.append(utt)
    if "utt2spk" in result.tables and (data_dir / "spk2utt").is_file():
        expected = dict(utt2spk_to_spk2utt(sorted(result.tables["utt2spk"].items())))
        actual = {}
        for line in (data_dir / "spk2utt").read_text(encoding="utf-8").splitlines():
            parts = line.split(maxsplit=1)
            if parts:
                actual[parts[0]] = " ".join(sorted(parts[1].split())) if len(parts) > 1 else ""
        if expected != actual:
            result.issues.append(Issue("-", "spk2utt", "does not match utt2spk", REGEN))

    # Audio: read every file once (in parallel with nj > 1).
    jobs = [(utt, n) for utt in ok_ids for n in names]
    args = [(result.tables[n][utt], clip_level, clip_fraction) for utt, n in jobs]
    if nj > 1 and len(args) > 1:
        with Pool(nj) as pool:
            infos = pool.map(inspect_file, args, chunksize=16)
    else:
        infos = [inspect_file(a) for a in args]
    result.infos = dict(zip(jobs, infos))
    for utt in ok_ids:
        bad = False
        for n in names:
            info = result.infos[(utt, n)]
            if info.error:
                result.issues.append(Issue(utt, n, info.error, DROP, info.error.split(":")[0].split(" '")[0]))
                bad = True
                continue
            if info.sr != fs:
                result.issues.append(Issue(utt, n, f"sample rate {info.sr} Hz, expected {fs} Hz", RESAMPLE,
                                           "wrong sample rate"))
            if info.channels > 1:
                result.issues.append(Issue(utt, n, f"{info.channels} channels, expected mono", DOWNMIX,
                                           "not mono"))
        if bad:
            continue
        ref = result.infos[(utt, "wav.scp")]
        mismatch = False
        for n in names[1:]:
            info = result.infos[(utt, n)]
            diff = info.frames / info.sr - ref.frames / ref.sr
            if abs(diff) > length_tolerance:
                # a few ms of padding is trimmed; a larger gap means the pair does not match: drop it
                limit = trim_limit(info.frames / info.sr, ref.frames / ref.sr, max_trim, max_trim_ratio)
                result.issues.append(Issue(utt, n, f"length {info.frames / info.sr:.3f} s differs from wav.scp "
                                                   f"{ref.frames / ref.sr:.3f} s by more than {length_tolerance} s",
                                           TRIM + " to the shorter" if abs(diff) <= limit else DROP,
                                           "length mismatch"))
                mismatch = True
        lengths = {_length_at(result.infos[(utt, n)], fs) for n in names}
        if len(lengths) > 1 and not mismatch:
            result.notes.append(f"{utt}: lengths {sorted(lengths)} samples within tolerance; trimmed to {min(lengths)}")
        result.keep.append(utt)
    dropped = {i.utt for i in result.issues if i.fix == DROP}
    result.keep = [u for u in result.keep if u not in dropped]
    return result


def write_checked_dir(result: CheckResult, data_dir: str | os.PathLike, out_dir: str | os.PathLike,
                      fs: int) -> list[str]:
    """Write the kept utterances to ``out_dir`` (fixed audio under out_dir/audio/<file>/), all scp files
    atomically. Returns a log line per changed file."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    names = [n for n in result.tables if n.endswith(".scp")]
    out: dict[str, list[Entry]] = {n: [] for n in names}
    changes = []
    for utt in result.keep:
        infos = {n: result.infos[(utt, n)] for n in names}
        target = min(_length_at(i, fs) for i in infos.values())
        for n, info in infos.items():
            src = result.tables[n][utt]
            if info.sr == fs and info.channels == 1 and info.frames == target:
                out[n].append((utt, src))
                continue
            x = read_mono(src, fs)[:target]
            dst = (out_dir / "audio" / Path(n).stem / f"{utt}.wav").resolve()
            subtype = info.subtype if info.subtype in ("PCM_16", "PCM_24", "PCM_32", "FLOAT") else "FLOAT"
            write_wav(dst, x, fs, subtype=subtype)
            what = [f"resampled {info.sr} -> {fs} Hz"] if info.sr != fs else []
            what += [f"downmixed {info.channels} channels"] if info.channels > 1 else []
            what += [f"trimmed to {target} samples"] if _length_at(info, fs) != target else []
            changes.append(f"{utt}  {n}: {', '.join(what)}: {dst}")
            out[n].append((utt, str(dst)))
    for n in names:
        write_scp(out_dir / n, out[n])
    utt2spk = result.tables.get("utt2spk")
    pairs = [(u, utt2spk[u] if utt2spk else u) for u in result.keep]
    write_scp(out_dir / "utt2spk", pairs)
    write_scp(out_dir / "spk2utt", utt2spk_to_spk2utt(pairs))
    keep = set(result.keep)
    for extra in sorted(p for p in data_dir.glob("utt2*") if p.name != "utt2spk" and p.is_file()):
        lines = [ln for ln in extra.read_text(encoding="utf-8").splitlines()
                 if ln.split()[:1] and ln.split()[0] in keep]
        atomic_write_text(out_dir / extra.name, "".join(f"{ln}\n" for ln in sorted(lines)))
    return changes


def report(result: CheckResult, fixing: bool) -> list[str]:
    """Human-readable lines: every issue, then a summary by reason."""
    lines = [f"ERROR: {f}" for f in result.fatal] + [i.line(fixing) for i in result.issues]
    if result.issues:
        kinds = Counter(i.kind or i.reason for i in result.issues)
        lines.append("summary: " + "; ".join(f"{k}: {c}" for k, c in kinds.most_common()))
    return lines


def raise_if_fatal(result: CheckResult) -> None:
    """DataError with the first fatal problem, if any."""
    if result.fatal:
        raise DataError(result.fatal[0])
