"""VoiceBank+DEMAND (ESPnet's vctk_noisy) as distributed: 48 kHz pairs resampled to ``fs``;
a validation set is held out from the training speakers.

Expected layout under the corpus root ($VCTK_NOISY in db.sh):
    clean_trainset_28spk_wav/p226_001.wav   noisy_trainset_28spk_wav/p226_001.wav
    clean_testset_wav/p232_001.wav          noisy_testset_wav/p232_001.wav
Utterance ids are the file names (``p226_001``), speakers their prefix (``p226``).
"""
from __future__ import annotations

from multiprocessing import Pool
from pathlib import Path
from typing import Sequence

import soundfile as sf

from dispatch.data.audio import Utterance, at_fs, read_mono, write_data_dir, write_wav
from dispatch.data.scp import DataError, pair_by_id

SUBDIRS = {"train": ("noisy_trainset_28spk_wav", "clean_trainset_28spk_wav"),
           "test": ("noisy_testset_wav", "clean_testset_wav")}
LAYOUT = ("expected VCTK_NOISY (db.sh) to be the VoiceBank+DEMAND root with clean_trainset_28spk_wav/, "
          "noisy_trainset_28spk_wav/, clean_testset_wav/, noisy_testset_wav/ (48 kHz wav files)")


def check_layout(root: str | None) -> Path:
    """The corpus root, or DataError naming VCTK_NOISY and the expected layout."""
    if not root:
        raise DataError(f"VCTK_NOISY is not set: {LAYOUT}")
    path = Path(root)
    missing = [d for pair in SUBDIRS.values() for d in pair if not (path / d).is_dir()]
    if missing:
        raise DataError(f"VCTK_NOISY={root}: missing {', '.join(m + '/' for m in missing)}; {LAYOUT}")
    return path


def _pairs(root: Path, part: str) -> list[tuple[str, Path, Path]]:
    """(utt_id, noisy, clean) of one part; every noisy file must have its clean file and vice versa."""
    noisy_dir, clean_dir = (root / d for d in SUBDIRS[part])
    noisy = {p.stem: p for p in noisy_dir.glob("*.wav")}
    clean = {p.stem: p for p in clean_dir.glob("*.wav")}
    return pair_by_id(
        noisy, clean, f"VCTK_NOISY: no wav files in {noisy_dir}; {LAYOUT}",
        lambda ids: f"VCTK_NOISY: {len(ids)} files have no noisy/clean partner in {part}, "
                    f"e.g. {ids[0]}.wav; re-extract the corpus")


def _convert(job: tuple[str, Path, int, str]) -> str:
    """``at_fs`` of one ``(utt, src, fs, dst)`` job (a picklable function for the process pool)."""
    _, src, fs, dst = job
    return at_fs(src, fs, dst)


def prepare_vctk(root: str | None, data_dir: str, audio_dir: str, fs: int = 16000,
                 valid_spk: Sequence[str] = ("p226", "p287"), nj: int = 1) -> dict[str, int]:
    """Write data_dir/{train,valid,test}; returns the set sizes."""
    path = check_layout(root)
    train, test = _pairs(path, "train"), _pairs(path, "test")
    speakers = {u.split("_")[0] for u, _, _ in train}
    unknown = sorted(set(valid_spk) - speakers)
    if unknown:
        raise DataError(f"--valid_spk {','.join(unknown)} not among the training speakers "
                        f"({', '.join(sorted(speakers)[:5])}, ...)")
    sets = {"train": [t for t in train if t[0].split("_")[0] not in valid_spk],
            "valid": [t for t in train if t[0].split("_")[0] in valid_spk],
            "test": test}
    if not sets["train"]:
        raise DataError("--valid_spk holds out every training speaker; leave some for training")
    jobs = [(u, src, fs, str(Path(audio_dir, name, kind, f"{u}.wav")))
            for name, items in sets.items() for u, noisy, clean in items
            for kind, src in (("noisy", noisy), ("clean", clean))]
    if nj > 1:
        with Pool(nj) as pool:
            paths = pool.map(_convert, jobs, chunksize=16)
    else:
        paths = [_convert(j) for j in jobs]
    out = iter(paths)
    sizes = {}
    for name, items in sets.items():
        utts = [Utterance(u, u.split("_")[0], next(out), next(out)) for u, _, _ in items]
        sizes[name] = write_data_dir(Path(data_dir, name), utts) if utts else 0
    return sizes
