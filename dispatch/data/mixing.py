"""Noisy mixtures synthesised from folders of clean speech and noise (DNS2020 training sets, custom data).

Per mixture, with its own generator seeded by (seed, set, index), so the output does not depend on
the number of jobs:
  * clean: one given file (optionally cropped to ``max_len`` samples), or random files joined with
    ``gap`` seconds of silence until ``length`` samples are filled;
  * level: clean scaled to a random level in ``level_db`` dBFS (RMS), or kept as is when None;
  * noise: random noise files joined until long enough, then a random segment of the clean length;
  * SNR uniform in ``snr_db``; all three signals scaled together when the mixture would clip.
Files of any sample rate and channel count are read as mono at ``fs``.
"""
from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import Sequence

import numpy as np

from dispatch.data.audio import Utterance, avoid_clipping, read_mono, rms, scale_noise_to_snr, write_wav
from dispatch.data.scp import DataError

SETS = ("train", "valid", "test")  # the three data sets a corpus preparation writes, in this order


@dataclass(frozen=True)
class MixConfig:
    """How mixtures are made (see the module docstring)."""

    fs: int = 16000
    snr_db: tuple[float, float] = (0.0, 40.0)
    level_db: tuple[float, float] | None = (-35.0, -15.0)
    gap: float = 0.2
    seed: int = 0
    write_noise: bool = False


@dataclass(frozen=True)
class MixJob:
    """One mixture: ``clean_index`` >= 0 uses that file, else random files fill ``length`` samples."""

    utt_id: str
    seed: tuple[int, ...]
    clean_index: int = -1
    length: int = 0
    max_len: int = 0


_POOLS: dict[str, object] = {}  # clean/noise file lists, config and audio dir for the workers


def _init(clean: Sequence[Path], noise: Sequence[Path], cfg: MixConfig, out_dir: str) -> None:
    """Pool initializer: share the file lists once instead of pickling them with every job."""
    _POOLS.update(clean=list(clean), noise=list(noise), cfg=cfg, out_dir=out_dir)


def _read_nonsilent(files: list[Path], rng: np.random.Generator, fs: int, kind: str) -> np.ndarray:
    """A random file with some energy, as mono at ``fs`` ([L])."""
    for _ in range(20):
        x = read_mono(files[int(rng.integers(len(files)))], fs)
        if len(x) and rms(x) > 1e-6:
            return x
    raise DataError(f"20 random {kind} files in a row were silent or empty; check the {kind} folder")


def _fill(files: list[Path], length: int, rng: np.random.Generator, fs: int, gap: float, kind: str) -> np.ndarray:
    """Random files joined (with ``gap`` s of silence) until ``length`` samples, then cut ([length])."""
    parts, total = [], 0
    while total < length:
        x = _read_nonsilent(files, rng, fs, kind)
        parts += [x, np.zeros(int(gap * fs), dtype=x.dtype)]
        total += len(x) + int(gap * fs)
    return np.concatenate(parts)[:length]


def _make(job: MixJob) -> Utterance:
    """Synthesise and write one mixture (process-pool worker)."""
    cfg: MixConfig = _POOLS["cfg"]  # type: ignore[assignment]
    clean_files: list[Path] = _POOLS["clean"]  # type: ignore[assignment]
    noise_files: list[Path] = _POOLS["noise"]  # type: ignore[assignment]
    rng = np.random.default_rng(list(job.seed))
    if job.clean_index >= 0:
        clean = read_mono(clean_files[job.clean_index], cfg.fs)
        if job.max_len and len(clean) > job.max_len:
            start = int(rng.integers(0, len(clean) - job.max_len + 1))
            clean = clean[start:start + job.max_len]
        if rms(clean) <= 1e-6:
            raise DataError(f"{clean_files[job.clean_index]}: silent clean file; remove it from the clean folder")
    else:
        clean = _fill(clean_files, job.length, rng, cfg.fs, cfg.gap, "clean")
    clean = clean.astype(np.float64)
    if cfg.level_db is not None:
        clean *= 10 ** (rng.uniform(*cfg.level_db) / 20) / rms(clean)
    noise = _fill(noise_files, len(clean), rng, cfg.fs, 0.0, "noise").astype(np.float64)
    noise = scale_noise_to_snr(clean, noise, float(rng.uniform(*cfg.snr_db)))
    noisy, clean, noise = avoid_clipping(clean + noise, clean, noise)
    out_dir = Path(str(_POOLS["out_dir"]))
    paths = {}
    for kind, x in (("noisy", noisy), ("clean", clean), ("noise", noise)):
        if kind == "noise" and not cfg.write_noise:
            continue
        paths[kind] = str((out_dir / kind / f"{job.utt_id}.wav").resolve())
        write_wav(paths[kind], x, cfg.fs)
    return Utterance(job.utt_id, job.utt_id, paths["noisy"], paths["clean"], paths.get("noise"))


def make_mixtures(jobs: Sequence[MixJob], clean: Sequence[Path], noise: Sequence[Path], cfg: MixConfig,
                  out_dir: str, nj: int = 1) -> list[Utterance]:
    """Run the jobs (``nj`` processes); audio goes to ``out_dir/{noisy,clean[,noise]}/<utt>.wav``."""
    if not clean:
        raise DataError("no clean speech files found (wav or flac)")
    if not noise:
        raise DataError("no noise files found (wav or flac)")
    if nj > 1:
        with Pool(nj, initializer=_init, initargs=(clean, noise, cfg, out_dir)) as pool:
            return pool.map(_make, jobs, chunksize=8)
    _init(clean, noise, cfg, out_dir)
    return [_make(j) for j in jobs]


def split_fractions(fractions: Sequence[float]) -> list[float]:
    """The train/valid/test shares ``fractions`` divided by their sum, for ``split_files``;
    DataError unless there are three, none negative and not all zero."""
    if len(fractions) != len(SETS) or min(fractions) < 0 or sum(fractions) <= 0:
        raise DataError(f"--fractions needs three non-negative numbers (train valid test), got {list(fractions)}")
    total = sum(fractions)
    return [f / total for f in fractions]


def split_files(files: Sequence[Path], fractions: Sequence[float], seed: int) -> list[list[Path]]:
    """Shuffle files with ``seed`` and cut them into consecutive groups by ``fractions``; every group
    with a positive fraction gets at least one file when there are enough files."""
    order = np.random.default_rng([seed, 77]).permutation(len(files))
    counts = [int(round(f * len(files))) for f in fractions]
    for i, f in enumerate(fractions):  # at least one file per requested group
        if f > 0 and counts[i] == 0:
            counts[i] = 1
    while sum(counts) > len(files):
        counts[int(np.argmax(counts))] -= 1
    counts[0] += len(files) - sum(counts)  # rounding leftovers go to the first group
    groups, start = [], 0
    for c in counts:
        groups.append(sorted(files[i] for i in order[start:start + c]))
        start += c
    return groups
