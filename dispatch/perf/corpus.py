"""A quickly made corpus for scaling measurements: many utterances, cheap to synthesise.

The mini recipe's speech synthesiser (``dispatch.data.mini``) runs at about 15x real time on one
core, too slow for hours of audio or ten thousand files. Here the "speech" is a sum of a few
harmonics under a syllable-rate envelope and the noise is white, mixed at a random SNR: what the
data stages and the teacher cost does not depend on the content, only on the number and the
length of the files. Written as 16-bit wavs with ``wav.scp`` (noisy), ``spk1.scp`` (clean),
``utt2spk`` and ``spk2utt``, every utterance seeded by (seed, index), same for any ``nj``.
"""
from __future__ import annotations

from multiprocessing import Pool
from pathlib import Path

import numpy as np

from dispatch.data.audio import Utterance, write_data_dir, write_wav


def synth_pair(index: int, samples: int, fs: int, seed: int) -> tuple:
    """(noisy, clean) float32 arrays [samples] of utterance ``index``."""
    rng = np.random.default_rng([seed, index])
    t = np.arange(samples) / fs  # [L]
    f0 = rng.uniform(90.0, 300.0)
    clean = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2.0, 5.0) * t), 0.0, None)  # syllables
    clean = 0.1 * clean * envelope  # [L]
    noise = rng.standard_normal(samples)  # [L]
    snr_db = rng.uniform(-5.0, 15.0)
    noise *= np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
    noisy = clean + noise
    peak = max(np.abs(noisy).max(), 1e-9)
    if peak > 0.99:
        noisy, clean = noisy * (0.99 / peak), clean * (0.99 / peak)
    return noisy.astype(np.float32), clean.astype(np.float32)


def _write_one(job: tuple) -> Utterance:
    index, samples, fs, seed, audio_dir = job
    utt = f"utt{index:06d}"
    noisy, clean = synth_pair(index, samples, fs, seed)
    paths = {}
    for name, x in (("noisy", noisy), ("clean", clean)):
        paths[name] = str(Path(audio_dir, name, f"{utt}.wav").resolve())
        write_wav(paths[name], x, fs)
    return Utterance(utt, utt, paths["noisy"], paths["clean"], None)


def make_timing_corpus(data_dir: str, audio_dir: str, num_utts: int, seconds: float,
                       fs: int = 16000, seed: int = 0, nj: int = 1) -> int:
    """Write ``num_utts`` utterances of ``seconds`` to ``data_dir`` (audio under ``audio_dir``)."""
    samples = int(round(seconds * fs))
    jobs = [(i, samples, fs, seed, audio_dir) for i in range(num_utts)]
    if nj > 1:
        with Pool(nj) as pool:
            utts = pool.map(_write_one, jobs, chunksize=64)
    else:
        utts = [_write_one(job) for job in jobs]
    return write_data_dir(Path(data_dir), utts)
