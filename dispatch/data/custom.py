"""Your own data: a folder of clean speech and a folder of noise (wav or flac, any sample rate and
channel count, nested folders) -> train/valid/test mixtures at an SNR range, with a seed.

Clean files are split by file into train/valid/test (``fractions``); each clean file gives
``mixtures_per_clean`` mixtures of its own length (cropped at random to ``max_duration`` s if longer),
with a random noise segment from the noise folder (shared by all sets; the noise files are not split).
Utterance ids come from the clean file's path relative to the clean folder (``a/b/c.flac`` ->
``a-b-c``, plus ``-m<k>`` for k > 0); utt2spk maps each utterance to itself.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from dispatch.data.audio import find_audio, write_data_dir
from dispatch.data.mixing import SETS, MixConfig, MixJob, make_mixtures, split_files, split_fractions
from dispatch.data.scp import DataError


def utt_id_for(path: Path, root: Path) -> str:
    """A Kaldi-safe utterance id from a file's path under ``root``."""
    rel = path.relative_to(root).with_suffix("")
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(rel.parts))


def prepare_custom(clean_dir: str | None, noise_dir: str | None, data_dir: str, audio_dir: str,
                   cfg: MixConfig = MixConfig(snr_db=(-5.0, 15.0), level_db=None),
                   fractions: Sequence[float] = (0.8, 0.1, 0.1), mixtures_per_clean: int = 1,
                   max_duration: float = 0.0, nj: int = 1) -> dict[str, int]:
    """Write data_dir/{train,valid,test}; returns the set sizes."""
    for opt, var, d in (("--clean_dir", "CUSTOM_CLEAN_DIR", clean_dir), ("--noise_dir", "CUSTOM_NOISE_DIR", noise_dir)):
        if not d or not Path(d).is_dir():
            raise DataError(f"{opt} '{d or ''}' is not a folder; set {var} in db.sh (or pass {opt}) to a folder "
                            "of wav/flac files (nested folders are fine)")
    clean_root, noise_root = Path(str(clean_dir)), Path(str(noise_dir))
    clean, noise = find_audio(clean_root), find_audio(noise_root)
    if not clean or not noise:
        raise DataError(f"no wav/flac files in {clean_root if not clean else noise_root}")
    groups = split_files(clean, split_fractions(fractions), cfg.seed)
    ids = [utt_id_for(p, clean_root) for p in clean]
    dups = sorted(i for i, c in Counter(ids).items() if c > 1)
    if dups:
        raise DataError(f"clean files give the same id {dups[0]} (e.g. a.wav and a.flac); rename one of them")
    index = {p: i for i, p in enumerate(clean)}
    sizes = {}
    for code, (name, files) in enumerate(zip(SETS, groups)):
        if fractions[code] > 0 and not files:
            raise DataError(f"{len(clean)} clean files are too few to give every set one; add files or "
                            "set its fraction to 0")
        jobs = [MixJob(f"{ids[index[p]]}{f'-m{k}' if k else ''}", (cfg.seed, code, index[p], k),
                       clean_index=index[p], max_len=int(max_duration * cfg.fs))
                for p in files for k in range(mixtures_per_clean)]
        if jobs:
            utts = make_mixtures(jobs, clean, noise, cfg, str(Path(audio_dir, name)), nj=nj)
            sizes[name] = write_data_dir(Path(data_dir, name), utts)
    return sizes
