"""Composite quality measures CSIG, CBAK, COVL (Hu & Loizou, 2008), written from the published definitions.

Reference: Y. Hu and P. C. Loizou, "Evaluation of objective quality measures for speech
enhancement", IEEE Trans. Audio, Speech, Lang. Process. 16(1), 2008, and the measures of
P. C. Loizou, "Speech Enhancement: Theory and Practice" (2007), ch. 10-11.

All frame-based measures use 30 ms frames, a hop of a quarter frame (75 % overlap) and a Hann
window without zero end points, ``w[n] = 0.5 (1 - cos(2 pi n / (W + 1)))``, ``n = 1..W``.
Only whole frames are used: ``floor((L - W) / hop)`` of them.

Component measures (``c`` clean reference, ``p`` processed signal, one frame each):

* **LLR** (log-likelihood ratio): with ``a_c``, ``a_p`` the LPC vectors ``[1, -a_1, ..., -a_P]``
  (order ``P = 10`` at 8 kHz, 16 above 10 kHz) and ``R_c`` the Toeplitz autocorrelation matrix
  of the clean frame, ``LLR = log( a_p R_c a_p^T / a_c R_c a_c^T )``, limited to [0, 2].
* **WSS** (weighted spectral slope, Klatt 1982): 25 Gaussian-shaped critical-band filters on the
  power spectrum; band energies ``E(k)`` in dB; slopes ``S(k) = E(k+1) - E(k)``; weights
  ``W(k) = Kmax / (Kmax + Emax - E(k)) * Klocmax / (Klocmax + Epeak(k) - E(k))`` with
  ``Kmax = 20``, ``Klocmax = 1``, averaged between clean and processed;
  ``WSS = sum_k W(k) (S_c(k) - S_p(k))^2 / sum_k W(k)``.
* **segSNR**: ``10 log10( sum c^2 / sum (c - p)^2 )`` per windowed frame, limited to
  [-10, 35] dB, averaged over all frames.

Per utterance, LLR and WSS are the means of the 95 % of frames with the smallest distortion;
segSNR is the mean of all frames. With ``PESQ`` the PESQ score (see ``pesq_mode``):

    CSIG = 3.093 - 1.029 LLR + 0.603 PESQ - 0.009 WSS
    CBAK = 1.634 + 0.478 PESQ - 0.007 WSS + 0.063 segSNR
    COVL = 1.594 + 0.805 PESQ - 0.512 LLR - 0.007 WSS

each limited to [1, 5].

``pesq_mode``: Hu & Loizou used the raw P.862 score. Most recent VoiceBank+DEMAND papers compute
the composite measures with the wide-band PESQ (P.862.2 MOS-LQO) instead, so ``"wb"`` is the
default here (comparable with those tables); ``"nb_raw"`` gives the raw P.862 score, recovered
from the P.862.1 mapping of the narrow-band MOS-LQO.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dispatch.metrics.intrusive import pesq_nb, pesq_wb

# Klatt's critical bands: centre frequencies and bandwidths in Hz (25 bands).
CRIT_CENTRE_HZ = np.array(
    [50.0, 120.0, 190.0, 260.0, 330.0, 400.0, 470.0, 540.0, 617.372, 703.378, 798.717,
     904.128, 1020.38, 1148.30, 1288.72, 1442.54, 1610.70, 1794.16, 1993.93, 2211.08,
     2446.71, 2701.97, 2978.04, 3276.17, 3597.63]
)
CRIT_BANDWIDTH_HZ = np.array(
    [70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0, 77.3724, 86.0056, 95.3398, 105.411,
     116.256, 127.914, 140.423, 153.823, 168.154, 183.457, 199.776, 217.153, 235.631,
     255.255, 276.072, 298.126, 321.465, 346.136]
)
WSS_KMAX = 20.0
WSS_KLOCMAX = 1.0
TRIM_ALPHA = 0.95  # fraction of lowest-distortion frames kept for LLR and WSS
SEGSNR_MIN_DB, SEGSNR_MAX_DB = -10.0, 35.0
LLR_MIN, LLR_MAX = 0.0, 2.0
_TINY = np.finfo(np.float64).eps


@dataclass
class CompositeScores:
    """Composite measures and their components for one utterance."""

    CSIG: float
    CBAK: float
    COVL: float
    LLR: float
    WSS: float
    SEG_SNR: float
    PESQ: float


def _frames(x: np.ndarray, fs: int) -> np.ndarray:
    """Windowed 30 ms frames with 75 % overlap.  x: [L] -> [T, W]."""
    win_len = int(round(0.030 * fs))
    hop = win_len // 4
    n_frames = (len(x) - win_len) // hop
    if n_frames < 1:
        raise ValueError(f"signal of {len(x)} samples is shorter than one 30 ms frame plus a hop")
    n = np.arange(1, win_len + 1)
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * n / (win_len + 1)))
    idx = np.arange(n_frames)[:, None] * hop + np.arange(win_len)[None, :]  # [T, W]
    return x[idx] * window[None, :]


def _trimmed_mean(values: np.ndarray, alpha: float = TRIM_ALPHA) -> float:
    """Mean of the round(alpha * N) smallest values (at least one)."""
    keep = max(1, int(round(len(values) * alpha)))
    return float(np.mean(np.sort(values)[:keep]))


def _autocorr(frames: np.ndarray, order: int) -> np.ndarray:
    """Autocorrelation lags 0..order.  frames: [T, W] -> [T, order + 1]."""
    width = frames.shape[1]
    return np.stack(
        [np.sum(frames[:, : width - k] * frames[:, k:], axis=1) for k in range(order + 1)], axis=1
    )


def _levinson(r: np.ndarray) -> np.ndarray:
    """LPC polynomials [1, -a_1, ..., -a_P] by Levinson-Durbin, for many frames at once.

    r: [T, P + 1] autocorrelations -> [T, P + 1].  A frame of digital silence gives [1, 0, ...].
    """
    n_frames, order = r.shape[0], r.shape[1] - 1
    a = np.zeros((n_frames, order))  # predictor coefficients a_1..a_i
    err = r[:, 0] + _TINY  # [T]
    for i in range(order):
        k = (r[:, i + 1] - np.sum(a[:, :i] * r[:, i:0:-1], axis=1)) / err  # [T]
        prev = a[:, :i].copy()
        a[:, i] = k
        a[:, :i] = prev - k[:, None] * prev[:, ::-1]
        err = np.maximum((1.0 - k * k) * err, _TINY)
    return np.concatenate([np.ones((n_frames, 1)), -a], axis=1)


def llr_frames(clean: np.ndarray, proc: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame log-likelihood ratio, limited to [0, 2].  clean, proc: [L] -> [T]."""
    order = 10 if fs < 10000 else 16
    rc = _autocorr(_frames(clean, fs), order)  # [T, P+1]
    rp = _autocorr(_frames(proc, fs), order)  # [T, P+1]
    a_c = _levinson(rc)  # [T, P+1]
    a_p = _levinson(rp)  # [T, P+1]
    lag = np.abs(np.arange(order + 1)[:, None] - np.arange(order + 1)[None, :])
    toeplitz = rc[:, lag]  # [T, P+1, P+1], R_c of each frame
    num = np.einsum("ti,tij,tj->t", a_p, toeplitz, a_p)
    den = np.einsum("ti,tij,tj->t", a_c, toeplitz, a_c)
    out = np.log(np.maximum(num, _TINY) / np.maximum(den, _TINY))
    return np.clip(out, LLR_MIN, LLR_MAX)


def _crit_filters(fs: int, n_half: int) -> np.ndarray:
    """Gaussian-shaped critical-band filters on FFT bins 0..n_half-1.  -> [25, n_half]."""
    nyquist = fs / 2.0
    bins = np.arange(n_half)
    floor_gain = math.exp(-30.0 / (2.0 * 2.303))  # -30 dB
    filters = np.empty((len(CRIT_CENTRE_HZ), n_half))
    for i, (fc, bw_hz) in enumerate(zip(CRIT_CENTRE_HZ, CRIT_BANDWIDTH_HZ)):
        centre = math.floor(fc / nyquist * n_half)
        bw = bw_hz / nyquist * n_half
        gain = math.log(CRIT_BANDWIDTH_HZ[0]) - math.log(bw_hz)  # narrowest band has gain 1
        f = np.exp(-11.0 * ((bins - centre) / bw) ** 2 + gain)
        filters[i] = np.where(f > floor_gain, f, 0.0)
    return filters


def _nearest_peaks(energy: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Energy of the nearest spectral peak for each band, following the sign of the slope.

    energy: [T, K] dB; slope: [T, K-1] -> [T, K-1].  Where the slope at band i is positive,
    walk up to the first band n >= i whose slope is not positive and take E(n - 1); otherwise
    walk down to the last band n <= i whose slope is positive and take E(n + 1) (Klatt's rule,
    indexed as in Loizou's reference implementation).
    """
    n_frames, n_slope = slope.shape
    up = slope > 0  # [T, K-1]
    first_flat = np.empty((n_frames, n_slope), dtype=np.int64)  # first n >= i with slope <= 0
    cursor = np.full(n_frames, n_slope)
    for n in range(n_slope - 1, -1, -1):
        cursor = np.where(up[:, n], cursor, n)
        first_flat[:, n] = cursor
    last_up = np.empty((n_frames, n_slope), dtype=np.int64)  # last n <= i with slope > 0
    cursor = np.full(n_frames, -1)
    for n in range(n_slope):
        cursor = np.where(up[:, n], n, cursor)
        last_up[:, n] = cursor
    idx = np.where(up, first_flat - 1, last_up + 1)  # [T, K-1]
    return np.take_along_axis(energy, idx, axis=1)


def wss_frames(clean: np.ndarray, proc: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame weighted spectral slope distance.  clean, proc: [L] -> [T]."""
    fc = _frames(clean, fs)  # [T, W]
    fp = _frames(proc, fs)  # [T, W]
    n_fft = int(2 ** math.ceil(math.log2(2 * fc.shape[1])))
    n_half = n_fft // 2
    filters = _crit_filters(fs, n_half)  # [K, n_half]
    spec_c = np.abs(np.fft.rfft(fc, n_fft, axis=1)[:, :n_half]) ** 2  # [T, n_half]
    spec_p = np.abs(np.fft.rfft(fp, n_fft, axis=1)[:, :n_half]) ** 2
    e_c = 10.0 * np.log10(np.maximum(spec_c @ filters.T, 1e-10))  # [T, K]
    e_p = 10.0 * np.log10(np.maximum(spec_p @ filters.T, 1e-10))
    s_c = np.diff(e_c, axis=1)  # [T, K-1]
    s_p = np.diff(e_p, axis=1)
    w = 0.5 * (_wss_weights(e_c, s_c) + _wss_weights(e_p, s_p))  # [T, K-1]
    return np.sum(w * (s_c - s_p) ** 2, axis=1) / np.sum(w, axis=1)


def _wss_weights(energy: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Klatt's slope weights.  energy: [T, K] dB, slope: [T, K-1] -> [T, K-1]."""
    e = energy[:, :-1]
    w_max = WSS_KMAX / (WSS_KMAX + energy.max(axis=1, keepdims=True) - e)
    w_loc = WSS_KLOCMAX / (WSS_KLOCMAX + _nearest_peaks(energy, slope) - e)
    return w_max * w_loc


def segsnr_frames(clean: np.ndarray, proc: np.ndarray, fs: int) -> np.ndarray:
    """Per-frame segmental SNR in dB, limited to [-10, 35].  clean, proc: [L] -> [T]."""
    fc = _frames(clean, fs)
    fp = _frames(proc, fs)
    signal = np.sum(fc**2, axis=1)
    noise = np.sum((fc - fp) ** 2, axis=1)
    snr = 10.0 * np.log10(signal / (noise + _TINY) + _TINY)
    return np.clip(snr, SEGSNR_MIN_DB, SEGSNR_MAX_DB)


def nb_mos_lqo_to_raw(mos_lqo: float) -> float:
    """Invert the P.862.1 mapping ``MOS-LQO = 0.999 + 4 / (1 + exp(-1.4945 x + 4.6607))``."""
    y = min(max(mos_lqo, 0.999 + 1e-9), 4.999 - 1e-9)
    return (4.6607 - math.log(4.0 / (y - 0.999) - 1.0)) / 1.4945


def composite(
    ref: np.ndarray, est: np.ndarray, fs: int, pesq_score: float | None = None, pesq_mode: str = "wb"
) -> CompositeScores:
    """CSIG, CBAK, COVL of ``est`` against ``ref`` (both [L], same length; fs 8000 or 16000).

    ``pesq_score``: pass an already computed PESQ of the kind ``pesq_mode`` names, to avoid
    computing it twice. ``pesq_mode``: ``"wb"`` (default) or ``"nb_raw"`` (see module docstring).
    """
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"length mismatch: reference {ref.shape}, estimate {est.shape}")
    if pesq_score is None:
        if pesq_mode == "wb":
            pesq_score = pesq_wb(ref, est, fs)
        elif pesq_mode == "nb_raw":
            pesq_score = nb_mos_lqo_to_raw(pesq_nb(ref, est, fs))
        else:
            raise ValueError(f"pesq_mode must be 'wb' or 'nb_raw', not {pesq_mode!r}")
    llr = _trimmed_mean(llr_frames(ref, est, fs))
    wss = _trimmed_mean(wss_frames(ref, est, fs))
    seg = float(np.mean(segsnr_frames(ref, est, fs)))
    p = float(pesq_score)
    csig = 3.093 - 1.029 * llr + 0.603 * p - 0.009 * wss
    cbak = 1.634 + 0.478 * p - 0.007 * wss + 0.063 * seg
    covl = 1.594 + 0.805 * p - 0.512 * llr - 0.007 * wss

    def clip(v: float) -> float:
        return float(min(5.0, max(1.0, v)))

    return CompositeScores(clip(csig), clip(cbak), clip(covl), llr, wss, seg, p)
