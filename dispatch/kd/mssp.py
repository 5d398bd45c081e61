"""MSSP: Multi-Scale Selective Patches (DISPatch paper, arXiv 2509.15922), two bands, two patch sizes.

The bins are split into a low and a high band:

* ``split: fixed``: low band ``f < c``, high band ``f >= c`` with ``c = round(split_hz * n_fft / fs)``
  (Python rounding), the same for every frame.
* ``split: adaptive``: the DFKD frequency adapter on the teacher magnitude (see
  :mod:`dispatch.kd.dfkd`) gives a crossover bin ``m_n`` per frame; low band ``f <= m_n``, high band
  ``f >= m_n``, so the boundary bin belongs to both bands.

Each band keeps the bin-0 anchored patch grid with its own patch size (``low_patch_bins`` 10,
``high_patch_bins`` 40, ``patch_frames`` frames). A patch's cells outside its band (or past the
utterance's length) are left out of its means, and a patch without any in-band valid cell is not a
patch. In each band, separately, DISPatch runs as in :mod:`dispatch.kd.dispatch_kd`::

    KGS_band(p) = D_band(S, Y; p) - D_band(T, Y; p)
    L_band      = sum_{p selected} n_p D_band(S, T; p) / sum_{p selected} n_p
    mssp_loss   = L_low + L_high

Band distance ``D_band``: with ``base: l2_mag`` it is ``mean_p (|S| - |T|)^2`` in both bands; with
``base: dfkd`` it is the DFKD distance of that band (our choice for a fixed split too): the complex
cosine distance in the low band and ``beta * cos + (1 - beta) * mean (|S| - |T|)^2`` in the high band.

Conf: ``base`` (dfkd), ``low_patch_bins`` (10), ``high_patch_bins`` (40), ``split`` (adaptive),
``split_hz`` (4000), ``crossover_floor_hz`` (0: the published adapter; see :mod:`dispatch.kd.dfkd`),
``fs`` (16000), ``patch_frames`` (1), ``k`` (0.8), ``select`` (topk), ``beta`` (0.5), ``eps``, STFT
options, ``scale_to_ref`` (False).
Defaults follow the paper's best system (DFKD + DISPatch + MSSP, 10/40 patches).
Stats: ``loss``, ``loss_low``, ``loss_high``, ``frac_selected_{low,high}``,
``kgs_selected_{low,high}``, ``kgs_unselected_{low,high}``, ``crossover_hz`` (mean over valid frames;
for a fixed split ``c * fs / n_fft``) and ``crossover_hz_p10/p50/p90``.
"""
from __future__ import annotations

import torch

from dispatch.kd.dispatch_kd import SelectivePatchLoss, check_selection_conf
from dispatch.kd.stft import EPS, Spectra, hz_to_bin

SPLITS = ("adaptive", "fixed")


class MSSPLoss(SelectivePatchLoss):
    """``mssp``: DISPatch with a small patch in the low band and a large one in the high band."""

    def __init__(self, base: str = "dfkd", low_patch_bins: int = 10, high_patch_bins: int = 40,
                 split: str = "adaptive", split_hz: float = 4000.0, fs: float = 16000,
                 patch_frames: int = 1, k: float = 0.8, select: str = "topk", beta: float = 0.5,
                 eps: float = EPS, n_fft: int = 512, hop_length: int = 128, win_length: int = 512,
                 scale_to_ref: bool = False, crossover_floor_hz: float = 0.0) -> None:
        check_selection_conf(k, select, base, low_patch_bins=low_patch_bins,
                             high_patch_bins=high_patch_bins, patch_frames=patch_frames)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
        super().__init__(base, patch_frames, k, select, beta, fs, eps, n_fft, hop_length,
                         win_length, scale_to_ref, crossover_floor_hz)
        self.low_patch_bins, self.high_patch_bins = int(low_patch_bins), int(high_patch_bins)
        self.split, self.split_hz = split, float(split_hz)
        self.split_bin = hz_to_bin(self.split_hz, n_fft, self.fs)
        self.band_names, self.reports_crossover = ("low", "high"), True

    def bands(self, spectra: Spectra):
        if self.split == "adaptive":
            crossover = self.crossover(spectra)  # [B, N]: low f <= m_n, high f >= m_n
            low, high = (None, crossover), (crossover, None)
        else:
            crossover = torch.full_like(spectra.frames, self.split_bin, dtype=torch.long)  # [B, N]
            low, high = (None, crossover - 1), (crossover, None)  # low f < c, high f >= c
        low_kind, high_kind = ("l2", "l2") if self.base == "l2_mag" else ("cos", "high")
        return [("low", [(low, low_kind)], self.low_patch_bins),
                ("high", [(high, high_kind)], self.high_patch_bins)], crossover


def mssp_loss(student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
              lengths: torch.Tensor = None, **conf) -> tuple[torch.Tensor, dict]:
    """Functional form: ``MSSPLoss(**conf)(student_wav, teacher_wav, ref_wav, lengths)``."""
    return MSSPLoss(**conf)(student_wav, teacher_wav, ref_wav, lengths)
