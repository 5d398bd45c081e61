"""Audio helpers shared by the corpus preparations: read, resample, write, find files, mix at an SNR,
and write a Kaldi-style enhancement data dir.

Signals are float numpy arrays in [-1, 1]: mono ``[L]``, multi-channel ``[L, C]`` as soundfile returns.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from collections import Counter
from math import gcd
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from dispatch.data.scp import DataError, utt2spk_to_spk2utt, write_scp
from dispatch.utils.io import atomic_write

AUDIO_EXTENSIONS = (".wav", ".flac")


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Polyphase resampling along axis 0; ``x``: [L] or [L, C] -> [L * fs_out / fs_in] (rounded)."""
    if fs_in == fs_out:
        return x
    g = gcd(int(fs_in), int(fs_out))
    return resample_poly(x, fs_out // g, fs_in // g, axis=0).astype(x.dtype, copy=False)


def read_mono(path: str | os.PathLike, fs: int) -> np.ndarray:
    """Read a file as float32 mono at ``fs`` (channels averaged, resampled if needed) -> [L]."""
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [L, C]
    except (RuntimeError, sf.LibsndfileError) as e:  # unreadable or not audio
        raise DataError(f"{path}: cannot read audio ({e})") from None
    return resample(x.mean(axis=1), sr, fs)


def write_wav(path: str | os.PathLike, x: np.ndarray, fs: int, subtype: str = "PCM_16") -> None:
    """Write ``x`` ([L] or [L, C]) atomically (temp file + os.replace); PCM is clipped to [-1, 1]."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if subtype.startswith("PCM"):
        x = np.clip(x, -1.0, 1.0)
    atomic_write(path, lambda tmp: sf.write(tmp, x, fs, subtype=subtype, format="WAV"), suffix=".wav")


def at_fs(src: str | os.PathLike, fs: int, dst: str | os.PathLike) -> str:
    """The path to list for ``src`` at ``fs``: ``src`` itself when it already is mono at ``fs``,
    else a copy written to ``dst`` as ``read_mono`` reads it (channels averaged, resampled).
    An unreadable file raises DataError."""
    try:
        info = sf.info(str(src))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise DataError(f"{src}: cannot read audio ({e}); re-extract the corpus") from None
    if info.samplerate == fs and info.channels == 1:
        return str(Path(src).absolute())
    write_wav(dst, read_mono(src, fs), fs)
    return str(Path(dst).resolve())


def find_audio(root: str | os.PathLike, extensions: Sequence[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Every audio file under ``root`` (recursive, case-insensitive extension), sorted by path."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def rms(x: np.ndarray) -> float:
    """Root mean square of a signal [L]."""
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def scale_noise_to_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Noise [L] scaled so that 10 log10(P_clean / P_noise) = ``snr_db`` over the whole signal."""
    return noise * (rms(clean) / (rms(noise) * 10.0 ** (snr_db / 20.0)))


def avoid_clipping(*signals: np.ndarray, peak: float = 0.99) -> tuple[np.ndarray, ...]:
    """Scale all signals by one factor so that none peaks above ``peak`` (keeps noisy = clean + noise)."""
    top = max((float(np.max(np.abs(s))) for s in signals if len(s)), default=0.0)
    if top <= peak:
        return signals
    g = peak / top
    return tuple(s * g for s in signals)


@dataclass
class Utterance:
    """One entry of an enhancement data dir: mixture, clean reference, optional noise (audio paths)."""

    utt_id: str
    spk: str
    noisy: str
    clean: str
    noise: str | None = None


def write_data_dir(data_dir: str | os.PathLike, utts: Iterable[Utterance]) -> int:
    """Write wav.scp, spk1.scp, utt2spk, spk2utt (and noise1.scp when every utt has noise), sorted
    (LC_ALL=C) and atomically. Returns the number of utterances; duplicate ids raise DataError."""
    utts = sorted(utts, key=lambda u: u.utt_id)
    ids = [u.utt_id for u in utts]
    dup = sorted(i for i, c in Counter(ids).items() if c > 1)
    if dup:
        raise DataError(f"duplicate utterance ids while writing {data_dir}: {', '.join(dup[:3])}")
    if not utts:
        raise DataError(f"no utterances for {data_dir}; check the input folders and the set sizes")
    data_dir = Path(data_dir)
    write_scp(data_dir / "wav.scp", [(u.utt_id, u.noisy) for u in utts])
    write_scp(data_dir / "spk1.scp", [(u.utt_id, u.clean) for u in utts])
    utt2spk = [(u.utt_id, u.spk) for u in utts]
    write_scp(data_dir / "utt2spk", utt2spk)
    write_scp(data_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    if all(u.noise for u in utts):
        write_scp(data_dir / "noise1.scp", [(u.utt_id, str(u.noise)) for u in utts])
    elif (data_dir / "noise1.scp").exists():
        (data_dir / "noise1.scp").unlink()  # stale from an earlier run
    return len(utts)
