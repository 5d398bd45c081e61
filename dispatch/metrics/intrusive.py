"""Intrusive per-utterance metrics: PESQ (WB/NB), STOI, ESTOI, SI-SNR, SDR.

Every function takes the clean reference ``ref`` and the estimate ``est`` as 1-D arrays of the
same length, ``[L]``, at sample rate ``fs``, and returns a float.  They match what
``espnet2.bin.enh_scoring`` (espnet 202511) reports, apart from its STOI/ESTOI scale (percent there,
0..1 here):

* PESQ: the ``pesq`` package (ITU-T P.862.2 wide band, P.862 + P.862.1 mapping narrow band).
  WB needs fs = 16000; NB needs fs = 8000 or 16000.  Other rates raise ``MetricUnavailable``
  (resample first; this module never resamples silently).
* STOI / ESTOI: ``pystoi.stoi(ref, est, fs, extended=False/True)`` (resamples to 10 kHz itself).
* SI-SNR: both signals made zero-mean, ``s_t = (<est, ref> / ||ref||^2) ref``,
  ``SI-SNR = 10 log10(||s_t||^2 / ||est - s_t||^2)`` (as ESPnet's ``SISNRLoss``, no clamping).
* SDR: BSS-Eval v3 ``mir_eval.separation.bss_eval_sources`` with one source (512-tap
  time-invariant distortion filter), which is what ``enh_scoring`` calls.
"""
from __future__ import annotations

import warnings

import numpy as np

_EPS = np.finfo(np.float64).tiny


class MetricUnavailable(ValueError):
    """The metric is not defined for this input (e.g. PESQ WB at 8 kHz); the message says why."""


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != est.shape:
        raise ValueError(f"need two 1-D signals of equal length, got {ref.shape} and {est.shape}")
    return ref, est


def pesq_wb(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Wide-band PESQ (P.862.2 MOS-LQO, -0.5..4.64).  Requires fs = 16000."""
    if fs != 16000:
        raise MetricUnavailable(f"PESQ WB requires fs 16000 Hz, got {fs} Hz (resample first)")
    from pesq import pesq

    ref, est = _pair(ref, est)
    return float(pesq(fs, ref, est, "wb"))


def pesq_nb(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Narrow-band PESQ (P.862 with the P.862.1 MOS-LQO mapping).  Requires fs 8000 or 16000."""
    if fs not in (8000, 16000):
        raise MetricUnavailable(f"PESQ NB requires fs 8000 or 16000 Hz, got {fs} Hz")
    from pesq import pesq

    ref, est = _pair(ref, est)
    return float(pesq(fs, ref, est, "nb"))


def stoi(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Short-time objective intelligibility (Taal et al., 2011), 0..1, via pystoi."""
    from pystoi import stoi as _stoi

    ref, est = _pair(ref, est)
    return float(_stoi(ref, est, fs, extended=False))


def estoi(ref: np.ndarray, est: np.ndarray, fs: int) -> float:
    """Extended STOI (Jensen & Taal, 2016), via pystoi."""
    from pystoi import stoi as _stoi

    ref, est = _pair(ref, est)
    return float(_stoi(ref, est, fs, extended=True))


def si_snr(ref: np.ndarray, est: np.ndarray, fs: int | None = None) -> float:
    """Scale-invariant SNR in dB with zero-mean signals (``fs`` is unused, for a uniform API)."""
    ref, est = _pair(ref, est)
    ref = ref - ref.mean()
    est = est - est.mean()
    target = (np.dot(est, ref) / (np.dot(ref, ref) + _EPS)) * ref
    noise = est - target
    return float(10.0 * np.log10((np.dot(target, target) + _EPS) / (np.dot(noise, noise) + _EPS)))


def sdr(ref: np.ndarray, est: np.ndarray, fs: int | None = None) -> float:
    """BSS-Eval v3 SDR in dB (mir_eval, one source, 512-tap filter; ``fs`` unused)."""
    from mir_eval.separation import bss_eval_sources

    ref, est = _pair(ref, est)
    with warnings.catch_warnings():  # mir_eval 0.8 marks bss_eval_sources as deprecated
        warnings.simplefilter("ignore", FutureWarning)
        value, _, _, _ = bss_eval_sources(ref[None, :], est[None, :], compute_permutation=False)
    return float(value[0])
