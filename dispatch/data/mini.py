"""Seeded synthetic corpus for the mini recipe: speech-like signals mixed with six noise kinds.

Speech model (source-filter, one utterance = words of 1-3 syllables separated by pauses):
  * voiced nuclei: a glottal pulse train (one pulse per period, -6 dB/octave spectral tilt) whose f0
    follows a declining, smoothly wandering contour with jitter, filtered by four resonators:
    F1-F3 glide between vowel targets, F4 is fixed; a little aspiration noise is shaped the same way;
  * unvoiced onsets/codas: noise bursts through a band-pass resonance at 2.5-6.5 kHz;
  * pauses between words.
  Filtering is done per STFT frame (512-point, hop 128), so formants move frame by frame.
Speakers differ in f0 range (male / female / child classes), formant scaling, speaking rate and
breathiness. Babble uses a separate pool of speakers, never the target speakers.
Noise kinds: white, pink, brown, babble (3-6 talkers), hum (50/60 Hz and harmonics), clicks.
Every utterance has its own generator seeded by (seed, set, index), so a set does not change when
another set's size changes, and the result does not depend on the number of jobs.
"""
from __future__ import annotations

from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from scipy.signal import istft, stft

from dispatch.data.audio import Utterance, avoid_clipping, rms, scale_noise_to_snr, write_data_dir, write_wav

NOISE_KINDS = ("white", "pink", "brown", "babble", "hum", "clicks")
SETS = ("train", "valid", "test")
# Vowel formant targets F1, F2, F3 in Hz (adult male reference; scaled per speaker).
VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
                   [300, 870, 2240], [660, 1720, 2410], [490, 1350, 1690]], dtype=np.float64)
BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])  # B1..B4 in Hz
NFFT, HOP = 512, 128


@dataclass(frozen=True)
class Speaker:
    """Voice parameters of one synthetic speaker."""

    name: str
    f0: float              # median pitch in Hz
    f0_range: float        # intonation range in semitones
    formant_scale: float   # vocal-tract scaling of F1-F4
    rate: float            # speaking-rate factor (>1 is faster)
    breathiness: float     # aspiration noise level relative to voicing


def make_speaker(name: str, rng: np.random.Generator, voice: str) -> Speaker:
    """A speaker of class ``voice`` (male, female or child) with random parameters in that class."""
    f0_lo, f0_hi, sc_lo, sc_hi = {"male": (90, 140, 0.88, 0.98), "female": (170, 235, 1.05, 1.17),
                                  "child": (250, 320, 1.20, 1.30)}[voice]
    return Speaker(name, float(rng.uniform(f0_lo, f0_hi)), float(rng.uniform(2.0, 5.0)),
                   float(rng.uniform(sc_lo, sc_hi)), float(rng.uniform(0.85, 1.2)),
                   float(rng.uniform(0.02, 0.08)))


def make_speakers(seed: int, n: int, prefix: str, offset: int) -> list[Speaker]:
    """``n`` speakers cycling male, female, child; seeded by (seed, offset + k)."""
    voices = ("male", "female", "child")
    return [make_speaker(f"{prefix}{k + 1:02d}", np.random.default_rng([seed, offset + k]), voices[k % 3])
            for k in range(n)]


def _resonance(f: np.ndarray, fc: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Magnitude of a 2nd-order low-pass resonator (1 at DC, peak ~fc/bw at fc); broadcasts."""
    return fc ** 2 / np.sqrt((fc ** 2 - f ** 2) ** 2 + (bw * f) ** 2)


def _bandpass(f: np.ndarray, fc: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Magnitude of a 2nd-order band-pass resonator (1 at fc); broadcasts."""
    return bw * f / np.sqrt((fc ** 2 - f ** 2) ** 2 + (bw * f) ** 2)


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """Moving average over ``n`` samples (same length)."""
    return np.convolve(x, np.ones(n) / n, mode="same")


def synth_speech(spk: Speaker, n_samples: int, fs: int, rng: np.random.Generator) -> np.ndarray:
    """One utterance of speech-like sound, [n_samples] float64 at about -25 dBFS RMS."""
    voiced = np.zeros(n_samples)      # voicing amplitude per sample
    unvoiced = np.zeros(n_samples)    # frication amplitude per sample
    fric_fc = np.full(n_samples, 4000.0)
    formants = np.zeros((3, n_samples))
    prev = VOWELS[rng.integers(len(VOWELS))]
    t = int(rng.uniform(0.05, 0.3) * fs)
    formants[:, :t] = prev[:, None]
    while t < n_samples:
        for _ in range(int(rng.integers(1, 4))):  # syllables of one word
            if t >= n_samples:
                break
            if rng.random() < 0.5:  # unvoiced onset
                d = int(rng.uniform(0.04, 0.12) * fs / spk.rate)
                unvoiced[t:t + d] = rng.uniform(0.3, 0.7)
                fric_fc[t:t + d] = rng.uniform(2500, 6500)
                formants[:, t:t + d] = prev[:, None]
                t += d
            d = int(rng.uniform(0.09, 0.26) * fs / spk.rate)  # vowel nucleus, glides from prev
            target = VOWELS[rng.integers(len(VOWELS))]
            glide = max(1, int(d * rng.uniform(0.3, 0.5)))
            ramp = np.minimum(np.arange(d) / glide, 1.0)
            seg = prev[:, None] + (target - prev)[:, None] * ramp[None, :]
            end = max(t, min(t + d, n_samples))
            formants[:, t:end] = seg[:, :end - t]
            voiced[t:end] = rng.uniform(0.6, 1.0)
            prev, t = target, t + d
            if rng.random() < 0.3:  # unvoiced coda
                d = int(rng.uniform(0.03, 0.08) * fs / spk.rate)
                unvoiced[t:t + d] = rng.uniform(0.2, 0.5)
                fric_fc[t:t + d] = rng.uniform(2500, 6500)
                formants[:, t:t + d] = prev[:, None]
                t += d
        d = int((rng.uniform(0.06, 0.35) if rng.random() < 0.8 else rng.uniform(0.4, 0.6)) * fs)
        formants[:, t:t + d] = prev[:, None]  # pause
        t += d
    ramp_n = int(0.01 * fs)
    voiced, unvoiced = _smooth(voiced, ramp_n), _smooth(unvoiced, ramp_n)

    # Pitch: declination + smooth wandering (knots every 0.2 s) + 0.5 % jitter, in semitones.
    time = np.arange(n_samples) / fs
    knots = np.arange(0.0, time[-1] + 0.4, 0.2)
    wander = np.interp(time, knots, rng.uniform(-1, 1, len(knots)) * spk.f0_range / 2)
    semitones = wander - 2.0 * time / max(time[-1], 1e-3) + 0.08 * rng.standard_normal(n_samples)
    f0 = spk.f0 * 2.0 ** (semitones / 12.0)
    cycles = np.cumsum(f0) / fs                       # glottal cycles elapsed
    source = np.zeros(n_samples)
    source[1:][np.diff(np.floor(cycles)) > 0] = 1.0  # one pulse per cycle
    source *= np.sqrt(f0 / 100.0)                     # equal power whatever the pitch
    noise = rng.standard_normal(n_samples)
    glottal = voiced * source + spk.breathiness * voiced * noise
    fric = unvoiced * rng.standard_normal(n_samples)

    # Frame-wise filtering: formant envelope for the glottal part, band-pass for frication.
    _, _, zg = stft(glottal, fs, nperseg=NFFT, noverlap=NFFT - HOP)   # [F, N]
    _, _, zf = stft(fric, fs, nperseg=NFFT, noverlap=NFFT - HOP)      # [F, N]
    freqs = np.fft.rfftfreq(NFFT, 1 / fs)[:, None]                     # [F, 1]
    centres = np.minimum(np.arange(zg.shape[1]) * HOP, n_samples - 1)  # [N]
    fmt = formants[:, centres] * spk.formant_scale                     # [3, N]
    env = np.broadcast_to(1.0 / (1.0 + freqs / 200.0), zg.shape).copy()  # glottal tilt, -6 dB/oct
    for i in range(3):
        env *= _resonance(freqs, fmt[i][None, :], BANDWIDTHS[i] * spk.formant_scale)
    env *= _resonance(freqs, np.full((1, 1), 3400.0 * spk.formant_scale), BANDWIDTHS[3])
    env += 0.003 * (1.0 + freqs / 200.0) ** -0.5  # weak upper-band energy (no sharp cut above F4)
    fric_env = _bandpass(freqs, fric_fc[centres][None, :], 0.4 * fric_fc[centres][None, :])
    _, y = istft(zg * env + 0.3 * zf * fric_env, fs, nperseg=NFFT, noverlap=NFFT - HOP)
    y = y[:n_samples]
    return y * (10 ** (rng.uniform(-28, -22) / 20) / rms(y))


def _coloured(rng: np.random.Generator, n: int, fs: int, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1/f**exponent (above 20 Hz), [n]."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / fs), 20.0)
    return np.fft.irfft(spec * f ** (-exponent / 2), n)


def make_noise(kind: str, n: int, fs: int, rng: np.random.Generator, babblers: list[Speaker]) -> np.ndarray:
    """A noise signal of the given kind, [n] float64 (any scale; the mixer sets the SNR)."""
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "pink":
        return _coloured(rng, n, fs, 1.0)
    if kind == "brown":
        return _coloured(rng, n, fs, 2.0)
    if kind == "babble":
        talkers = rng.choice(len(babblers), size=int(rng.integers(3, 7)), replace=False)
        return sum(rng.uniform(0.5, 1.0) * synth_speech(babblers[i], n, fs, rng) for i in talkers)
    t = np.arange(n) / fs
    if kind == "hum":
        base = rng.choice([50.0, 60.0]) + rng.uniform(-0.3, 0.3)
        hum = sum(k ** -rng.uniform(0.5, 1.2) * np.sin(2 * np.pi * k * base * t + rng.uniform(0, 2 * np.pi))
                  for k in range(1, int(1000 // base) + 1))
        hum = hum * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t))
        return hum / rms(hum) + 0.03 * rng.standard_normal(n)
    if kind == "clicks":
        floor = _coloured(rng, n, fs, 1.0)
        out = 0.01 * floor / rms(floor)  # a faint pink floor between the clicks
        for pos in np.flatnonzero(rng.random(n) < rng.uniform(3, 12) / fs):
            tau = rng.uniform(0.0003, 0.003) * fs
            m = min(int(6 * tau) + 1, n - pos)
            out[pos:pos + m] += (rng.choice([-1, 1]) * 10 ** rng.uniform(-1, 0)
                                 * np.exp(-np.arange(m) / tau) * rng.standard_normal(m))
        return out
    raise ValueError(f"unknown noise kind {kind}")


@dataclass(frozen=True)
class MiniConfig:
    """Sizes and mixing settings of the mini corpus."""

    n_train: int = 240
    n_valid: int = 40
    n_test: int = 30
    duration: float = 2.0
    fs: int = 16000
    seed: int = 0
    n_speakers: int = 8
    n_babblers: int = 8
    snr_low: float = -5.0
    snr_high: float = 15.0


def synth_mixture(cfg: MiniConfig, set_name: str, index: int
                  ) -> tuple[str, str, np.ndarray, np.ndarray, np.ndarray]:
    """(utt_id, speaker, noisy, clean, noise) of one mixture of the corpus, in memory; each [L]."""
    rng = np.random.default_rng([cfg.seed, SETS.index(set_name), index])
    speakers = make_speakers(cfg.seed, cfg.n_speakers, "spk", 1000)
    babblers = make_speakers(cfg.seed, cfg.n_babblers, "bab", 2000)
    spk = speakers[int(rng.integers(len(speakers)))]
    kind = NOISE_KINDS[index % len(NOISE_KINDS)]
    n = int(round(cfg.duration * cfg.fs))
    clean = synth_speech(spk, n, cfg.fs, rng)
    noise = scale_noise_to_snr(clean, make_noise(kind, n, cfg.fs, rng, babblers),
                               float(rng.uniform(cfg.snr_low, cfg.snr_high)))
    noisy, clean, noise = avoid_clipping(clean + noise, clean, noise)
    return f"{spk.name}_{set_name}_{index:04d}_{kind}", spk.name, noisy, clean, noise


def _make_utterance(job: tuple[MiniConfig, str, int, str]) -> Utterance:
    """Synthesise and write one mixture (worker for the process pool)."""
    cfg, set_name, index, audio_dir = job
    utt_id, spk_name, noisy, clean, noise = synth_mixture(cfg, set_name, index)
    paths = {}
    for name, x in (("noisy", noisy), ("clean", clean), ("noise", noise)):
        paths[name] = str(Path(audio_dir, set_name, name, f"{utt_id}.wav").resolve())
        write_wav(paths[name], x, cfg.fs)
    return Utterance(utt_id, spk_name, paths["noisy"], paths["clean"], paths["noise"])


def make_mini_corpus(cfg: MiniConfig, data_dir: str, audio_dir: str, nj: int = 1) -> dict[str, int]:
    """Write ``data_dir/{train,valid,test}`` and their audio under ``audio_dir``; returns set sizes."""
    sizes = {"train": cfg.n_train, "valid": cfg.n_valid, "test": cfg.n_test}
    jobs = [(cfg, s, i, audio_dir) for s in SETS for i in range(sizes[s])]
    if nj > 1:
        with Pool(nj) as pool:
            utts = pool.map(_make_utterance, jobs, chunksize=4)
    else:
        utts = [_make_utterance(j) for j in jobs]
    return {s: write_data_dir(Path(data_dir, s), [u for u, j in zip(utts, jobs) if j[1] == s])
            for s in SETS if sizes[s] > 0}
