"""Real speech, real noise, new mixtures: a folder of VoiceBank+DEMAND noisy/clean pairs remixed into
train/valid/test sets whose test utterances (speech *and* noise) training never sees.

Input: ``pairs_dir/noisy/<utt>.wav`` and ``pairs_dir/clean/<utt>.wav`` of equal length (any rate,
read as mono at ``fs``). The noise of a pair is the recorded residual ``noisy - clean``.

The pairs are shuffled with the seed and split by pair into train/valid/test (``fractions``).
Every set only mixes its own clean utterances with its own noises:

* train/valid: ``mixtures[set]`` mixtures per clean utterance, each with a random segment of the
  set's noises (joined end to end when too short) at an SNR uniform in ``cfg.snr_db``;
* test: the original recorded pairs (``<utt>``, as distributed) plus ``mixtures["test"]`` remixes per
  clean utterance (``<utt>-m<k>``) with the test noises.

So a tuned KD weight, patch size or crossover never sees a test utterance or a test noise.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from dispatch.data.audio import Utterance, at_fs, read_mono, write_data_dir, write_wav
from dispatch.data.mixing import SETS, MixConfig, MixJob, make_mixtures, split_files, split_fractions
from dispatch.data.scp import DataError


def find_pairs(pairs_dir: str | None) -> list[str]:
    """Utterance ids that have both ``noisy/<id>.wav`` and ``clean/<id>.wav``, sorted."""
    root = Path(str(pairs_dir or ""))
    if not pairs_dir or not (root / "noisy").is_dir() or not (root / "clean").is_dir():
        raise DataError(f"--pairs_dir '{pairs_dir or ''}' needs noisy/ and clean/ folders of paired wavs; "
                        "set VBD_PAIRS in db.sh (e.g. the VoiceBank+DEMAND noisy/clean test set)")
    noisy = {p.stem for p in (root / "noisy").glob("*.wav")}
    clean = {p.stem for p in (root / "clean").glob("*.wav")}
    ids = sorted(noisy & clean)
    if len(ids) < 3:
        raise DataError(f"{root}: {len(ids)} noisy/clean pairs with the same name; need at least 3 "
                        "(one each for train, valid and test)")
    return ids


def write_noise(root: Path, utt: str, out: Path, fs: int) -> Path:
    """The recorded noise ``noisy - clean`` of one pair, as ``out/<utt>.wav``."""
    noisy, clean = read_mono(root / "noisy" / f"{utt}.wav", fs), read_mono(root / "clean" / f"{utt}.wav", fs)
    if len(noisy) != len(clean):
        raise DataError(f"{root}/noisy/{utt}.wav and clean/{utt}.wav differ in length "
                        f"({len(noisy)} vs {len(clean)} samples); remove the pair")
    path = out / f"{utt}.wav"
    write_wav(path, (noisy - clean).astype(np.float64), fs, subtype="FLOAT")
    return path


def prepare_vbd_remix(pairs_dir: str | None, data_dir: str, audio_dir: str,
                      cfg: MixConfig = MixConfig(snr_db=(-5.0, 10.0), level_db=None),
                      fractions: Sequence[float] = (0.6, 0.1, 0.3),
                      mixtures: Mapping[str, int] = {"train": 16, "valid": 4, "test": 2},
                      nj: int = 1) -> dict[str, int]:
    """Write data_dir/{train,valid,test}; returns the set sizes (see the module docstring)."""
    ids = find_pairs(pairs_dir)
    shares = split_fractions(fractions)
    root = Path(str(pairs_dir))
    clean_paths = [root / "clean" / f"{u}.wav" for u in ids]
    groups = split_files(clean_paths, shares, cfg.seed)
    sizes = {}
    for code, (name, files) in enumerate(zip(SETS, groups)):
        utts = [p.stem for p in files]
        if not utts:
            raise DataError(f"no pairs left for the {name} set; add pairs or change --fractions")
        noise_dir = Path(audio_dir, name, "sources_noise")
        noise_dir.mkdir(parents=True, exist_ok=True)
        noise = [write_noise(root, u, noise_dir, cfg.fs) for u in utts]
        jobs = [MixJob(f"{u}-m{k}", (cfg.seed, code, i, k), clean_index=i)
                for i, u in enumerate(utts) for k in range(int(mixtures.get(name, 0)))]
        made = make_mixtures(jobs, files, noise, cfg, str(Path(audio_dir, name)), nj=nj) if jobs else []
        if name == "test":  # the recorded mixtures themselves, converted where not mono at fs
            recorded = Path(audio_dir, name, "recorded")
            made += [Utterance(u, u, at_fs(root / "noisy" / f"{u}.wav", cfg.fs, recorded / "noisy" / f"{u}.wav"),
                               at_fs(root / "clean" / f"{u}.wav", cfg.fs, recorded / "clean" / f"{u}.wav"),
                               str((noise_dir / f"{u}.wav").resolve()) if cfg.write_noise else None)
                     for u in utts]
        sizes[name] = write_data_dir(Path(data_dir, name), made)
    return sizes
