"""Conventional output KD: spectral-magnitude L2 and waveform SI-SNR between student and teacher.

``l2_mag``::

    L = sum_{b, f, n valid} (|S| - |T|)^2 / #valid (bin, frame) cells of the batch

``sisnr`` (teacher as target, zero-mean over the valid samples of each utterance)::

    t' = t - mean(t), s' = s - mean(s), proj = <s', t'> / (<t', t'> + eps) * t'
    SI-SNR_b = 10 log10((||proj||^2 + eps) / (||s' - proj||^2 + eps)),  L = -mean_b SI-SNR_b
"""
from __future__ import annotations

from typing import Optional

import torch

from dispatch.kd.base import KDLoss
from dispatch.kd.stft import (EPS, SpectralKDLoss, full_lengths, full_precision, sample_mask,
                              zero_padding)


class NoKDLoss(KDLoss):
    """``none``: a zero loss (connected to the student's graph) and no stats."""

    def forward(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None, **features) -> tuple[torch.Tensor, dict]:
        lengths = full_lengths(student_wav, lengths)  # [B]
        return zero_padding(student_wav, lengths).sum() * 0.0, {}


class L2MagLoss(SpectralKDLoss):
    """``l2_mag``: mean over valid (bin, frame) cells of ``(|S| - |T|)^2``.

    Conf: ``n_fft`` (512), ``hop_length`` (128), ``win_length`` (512), ``scale_to_ref`` (False;
    see :mod:`dispatch.kd.stft` for how scale is handled).
    """

    STAT_KEYS = ("loss",)

    def __init__(self, n_fft: int = 512, hop_length: int = 128, win_length: int = 512,
                 scale_to_ref: bool = False) -> None:
        super().__init__(n_fft, hop_length, win_length, scale_to_ref)

    def forward(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None, **features) -> tuple[torch.Tensor, dict]:
        with full_precision(student_wav.device):
            sp = self.spectra(student_wav, teacher_wav, ref_wav, lengths)
            per_frame = sp.quantity("sq_st").sum(dim=-1)  # [B, N, F] -> [B, N]
            frames = sp.frames.float()  # [B, N]
            num_cells = frames.sum() * sp.num_bins
            loss = (per_frame * frames).sum() / num_cells.clamp_min(1.0)
        return loss, {"loss": loss.detach()}


def si_snr(estimate: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor,
           eps: float = EPS) -> torch.Tensor:
    """Scale-invariant SNR in dB over the valid samples of each utterance.

    estimate, target: [B, L] (already zero past ``lengths``); lengths: [B] -> [B]
    """
    mask = sample_mask(lengths, estimate.shape[-1]).float()  # [B, L]
    count = mask.sum(dim=-1, keepdim=True).clamp_min(1.0)  # [B, 1]
    est = (estimate - estimate.sum(-1, keepdim=True) / count) * mask  # [B, L]
    tgt = (target - target.sum(-1, keepdim=True) / count) * mask  # [B, L]
    scale = (est * tgt).sum(-1, keepdim=True) / ((tgt * tgt).sum(-1, keepdim=True) + eps)  # [B, 1]
    proj = scale * tgt  # [B, L]
    noise = est - proj  # [B, L]
    ratio = ((proj * proj).sum(-1) + eps) / ((noise * noise).sum(-1) + eps)  # [B]
    return 10.0 * torch.log10(ratio)  # [B]


def sisnr_kd_loss(student_wav: torch.Tensor, teacher_wav: torch.Tensor,
                  lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Negative SI-SNR of the student against the (detached) teacher, mean over the batch.

    student_wav, teacher_wav: [B, L]; lengths: [B] -> scalar
    """
    with full_precision(student_wav.device):
        lengths = full_lengths(student_wav, lengths)  # [B]
        s = zero_padding(student_wav, lengths)  # [B, L]
        t = zero_padding(teacher_wav.detach(), lengths)  # [B, L]
        return -si_snr(s, t, lengths).mean()


class SISNRLoss(KDLoss):
    """``sisnr``: negative SI-SNR between student and teacher waveforms (no conf)."""

    STAT_KEYS = ("loss",)

    def forward(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None, **features) -> tuple[torch.Tensor, dict]:
        loss = sisnr_kd_loss(student_wav, teacher_wav, lengths)
        return loss, {"loss": loss.detach()}
