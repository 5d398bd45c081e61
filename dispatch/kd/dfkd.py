"""DFKD: Dynamic Frequency-Adaptive KD (Yuan et al., arXiv 2502.04711), over whole bands per frame.

Frequency adapter, per frame n, on the detached teacher magnitude::

    Fo[f] = max_{f' <= f} |T|[f', n]
    g[f]  = (Fo[f+1] - Fo[f]) / (Fo[f] + eps),      f = 0 .. F-2
    m_n   = argmax_f g[f]            (first maximum; a silent frame gives m_n = 0)
    low band = bins f <= m_n,  high band = bins f >= m_n   (bin m_n is in both)

Band distances between spectra A and B over a set of bins::

    cos(A, B)  = 1 - Re<A, B> / (||A|| ||B|| + eps)
    D_low      = cos(S, T) over the low band
    D_high     = beta * cos(S, T) + (1 - beta) * mean (|S| - |T|)^2 over the high band

Loss (our choice where the paper is silent: the two band distances are summed per frame and the
result is averaged over the valid frames of the whole batch)::

    L = sum_{valid (b, n)} (D_low(b, n) + D_high(b, n)) / #valid frames

Conf: ``beta`` (0.5), ``fs`` (16000, only for the crossover stat), ``eps`` (1e-8), the STFT options
and ``scale_to_ref`` (see :mod:`dispatch.kd.spectral`).
Stats: ``loss``, ``loss_low``, ``loss_high``, ``crossover_hz`` (mean over valid frames).
"""
from __future__ import annotations

from typing import Optional

import torch

from dispatch.kd.spectral import (EPS, PatchGrid, SpectralKDLoss, dfkd_crossover, full_precision,
                                  mean_crossover_hz, region_distance)


def check_beta(beta: float) -> float:
    if not 0.0 <= float(beta) <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    return float(beta)


class DFKDLoss(SpectralKDLoss):
    """``dfkd``: DFKD over whole bands per frame (formula in the module docstring)."""

    def __init__(self, beta: float = 0.5, fs: float = 16000, eps: float = EPS, n_fft: int = 512,
                 hop_length: int = 128, win_length: int = 512, scale_to_ref: bool = False) -> None:
        super().__init__(n_fft, hop_length, win_length, scale_to_ref)
        self.beta = check_beta(beta)
        self.fs, self.eps = float(fs), float(eps)

    def forward(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None, **features) -> tuple[torch.Tensor, dict]:
        with full_precision(student_wav.device):
            sp = self.spectra(student_wav, teacher_wav, ref_wav, lengths)
            num_bins = sp.num_bins
            crossover = dfkd_crossover(sp.quantity("mag_t"), self.eps)  # [B, N]
            # one "patch" per frame: all F bins of frame n, restricted to the band
            low = PatchGrid(sp.frames, num_bins, num_bins, 1, (None, crossover))  # f <= m
            high = PatchGrid(sp.frames, num_bins, num_bins, 1, (crossover, None))  # f >= m
            d_low = region_distance(sp, low, "cos", "st", self.beta, self.eps)  # [B, N]
            d_high = region_distance(sp, high, "high", "st", self.beta, self.eps)  # [B, N]
            frames = sp.frames.float()  # [B, N]
            num_valid = frames.sum().clamp_min(1.0)
            loss_low = (d_low * frames).sum() / num_valid
            loss_high = (d_high * frames).sum() / num_valid
            loss = loss_low + loss_high
            stats = {
                "loss": loss.detach(),
                "loss_low": loss_low.detach(),
                "loss_high": loss_high.detach(),
                "crossover_hz": mean_crossover_hz(crossover, sp.frames, self.n_fft, self.fs),
            }
        return loss, stats
