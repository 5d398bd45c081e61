"""DISPatch: distil only the spectrogram patches with the largest Knowledge Gap Score.

Kim & Choi, "DISPATCH: Distilling Selective Patches for Speech Enhancement", arXiv 2509.15922.

Patches are ``patch_bins`` bins x ``patch_frames`` frames on the bin-0 / frame-0 anchored grid (the
last group is shorter, never padded). A patch's means run over its valid cells only; a patch with no
valid cell is not a patch. For every patch p and a patch distance ``D``::

    KGS(p) = D(S, Y; p) - D(T, Y; p)                         (no gradient)
    m_b    = max(1, floor(k * P_b))    P_b = number of valid patches of utterance b
    select = topk:          the m_b patches of utterance b with the largest KGS (ties: lower index)
             positive:      the patches with KGS > 0
             topk_positive: the top-m_b patches that also have KGS > 0 (topk AND positive)
    L      = sum_{p selected} n_p D(S, T; p) / sum_{p selected} n_p      (n_p = cells of p)

The loss is averaged over the selected patches of the whole batch, each weighted by its number of
valid cells (bins x frames). With ``base: l2_mag``, ``D(p) = mean_p (|S| - |T|)^2``, so ``L`` is the
sum of ``(|S| - |T|)^2`` over all cells of the selected patches divided by their number, and k = 1
equals ``l2_mag`` exactly.

``base: dfkd`` (``bands: split``, the default; as in the authors' public loss code): the DFKD
crossover ``m_n`` of every frame (see :mod:`dispatch.kd.dfkd`, computed on the teacher) splits the
bins into a low band (``f <= m_n``) and a high band (``f >= m_n``; the crossover bin is in both).
Each band has its own bin-0 anchored grid of ``patch_bins``-bin patches (a patch's cells outside the
band are left out of its means), its own per-utterance top-k and its own normalisation::

    D_low(A, B; p)  = 1 - Re<A,B>_low(p) / (||A||_low(p) ||B||_low(p) + eps)
    D_high(A, B; p) = beta * cos_high(p)(A, B) + (1 - beta) * mean_high(p) (|A| - |B|)^2
    L               = L_low + L_high          (each as L above, within its band)

This is exactly ``mssp`` with ``base: dfkd``, ``split: adaptive`` and equal patch sizes (a test holds
them equal): the authors' "DFKD + DISPatch" (20/20) and "DFKD + DISPatch + MSSP" (10/40) are one
computation with different patch sizes.

``bands: pooled`` (our earlier reading, kept for comparison): one grid and one selection over all
bins; each patch mixes its two parts, ``D = (n_low D_low + n_high D_high) / (n_low + n_high)`` (an
empty part has weight 0), and ``n_p = n_low + n_high`` in the normalisation. Its loss is about half
of the split one, since it is one normalised mean instead of a sum of two.

Conf: ``base`` (l2_mag), ``bands`` (split; only for ``base: dfkd``), ``patch_bins`` (20),
``patch_frames`` (1), ``k`` (0.8), ``select`` (topk), ``beta`` (0.5), ``fs`` (16000), ``eps`` (1e-8),
``crossover_floor_hz`` (0: the published adapter, see :mod:`dispatch.kd.dfkd`), STFT options,
``scale_to_ref`` (False).
Stats: ``loss``, ``frac_selected`` (selected / valid patches), ``kgs_selected``, ``kgs_unselected``
(mean KGS of the selected and of the valid unselected patches; per band with ``_low``/``_high``
suffixes and ``loss_low``/``loss_high`` when there are two bands) and, for ``base: dfkd``, the
crossover distribution ``crossover_hz`` (mean), ``crossover_hz_p10/p50/p90``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from dispatch.kd.dfkd import (CROSSOVER_KEYS, check_beta, crossover_floor_bin, crossover_stats,
                              dfkd_crossover)
from dispatch.kd.patches import (PatchGrid, mixed_patch_distance, patch_index, patch_to_cells,
                                 region_mask)
from dispatch.kd.stft import EPS, Spectra, SpectralKDLoss, full_precision

SELECT_MODES = ("topk", "positive", "topk_positive")
BASES = ("l2_mag", "dfkd")
BAND_MODES = ("split", "pooled")
#: the stats of every band (suffixed ``_low``/``_high`` when a loss has two bands)
BAND_STATS = ("frac_selected", "kgs_selected", "kgs_unselected")

# A band part: (region, distance kind "l2" | "cos" | "high"); a region is (first bin, last bin),
# each [B, N] long or None (bin 0 / bin F-1), see ``dispatch.kd.patches.PatchGrid``.
Part = tuple[tuple, str]


def knowledge_gap_score(spectra: Spectra, grids: list[tuple[PatchGrid, str, dict]],
                        beta: float = 0.5, eps: float = EPS) -> torch.Tensor:
    """KGS(p) = D(S, Y; p) - D(T, Y; p), without gradient.  -> [B, P]"""
    with torch.no_grad():
        gap_s, _ = mixed_patch_distance(spectra, grids, "sy", beta, eps)  # [B, P]
        gap_t, _ = mixed_patch_distance(spectra, grids, "ty", beta, eps)  # [B, P]
        return gap_s - gap_t  # [B, P]


def select_patches(kgs: torch.Tensor, valid: torch.Tensor, k: float = 0.8,
                   select: str = "topk") -> torch.Tensor:
    """Patches to distil, per utterance (no gradient).

    kgs: [B, P] float; valid: [B, P] bool -> selected [B, P] bool (never an invalid patch).
    ``topk`` keeps ``min(P_b, max(1, floor(k * P_b)))`` valid patches with the largest KGS (ties go
    to the lower patch index); ``positive`` keeps KGS > 0; ``topk_positive`` keeps topk AND KGS > 0.
    """
    if select not in SELECT_MODES:
        raise ValueError(f"unknown select {select!r}; choose one of: {', '.join(SELECT_MODES)}")
    kgs, valid = kgs.detach(), valid.bool()
    positive = valid & (kgs > 0)  # [B, P]
    if select == "positive":
        return positive
    num_patches = kgs.shape[1]
    score = kgs.masked_fill(~valid, float("-inf"))  # [B, P]
    order = torch.sort(score, dim=1, descending=True, stable=True).indices  # [B, P]
    ranks = torch.arange(num_patches, device=kgs.device).expand_as(order)  # [B, P]
    rank = torch.empty_like(order).scatter_(1, order, ranks)  # [B, P] rank of every patch
    num_valid = valid.sum(dim=1)  # [B]
    keep = torch.floor(float(k) * num_valid.double()).long().clamp_min(1)  # [B]
    keep = torch.minimum(keep, num_valid)  # [B]
    topk = valid & (rank < keep[:, None])  # [B, P]
    return topk & positive if select == "topk_positive" else topk


@dataclass
class BandSelection:
    """Per-patch results of one band: kgs, cells (n_p), valid, selected: [B, P]; index: [F, N];
    frames: [B, N] bool (valid frames)."""

    loss: torch.Tensor
    kgs: torch.Tensor
    cells: torch.Tensor
    valid: torch.Tensor
    selected: torch.Tensor
    index: torch.Tensor
    frames: Optional[torch.Tensor] = None

    def stats(self, suffix: str = "") -> dict[str, torch.Tensor]:
        """frac_selected, kgs_selected, kgs_unselected (scalars, batch-level)."""
        sel, valid = self.selected.float(), self.valid.float()  # [B, P]
        unsel = valid - sel  # [B, P]
        kgs = torch.where(self.valid, self.kgs, torch.zeros_like(self.kgs))  # [B, P]
        values = (sel.sum() / valid.sum().clamp_min(1.0),
                  (kgs * sel).sum() / sel.sum().clamp_min(1.0),
                  (kgs * unsel).sum() / unsel.sum().clamp_min(1.0))
        return {f"{name}{suffix}": value for name, value in zip(BAND_STATS, values)}


def selective_band_loss(spectra: Spectra, parts: list[Part], patch_bins: int, patch_frames: int,
                        k: float, select: str, beta: float = 0.5, eps: float = EPS) -> BandSelection:
    """DISPatch on one band: KGS, selection and the cell-normalised loss of the selected patches.

    parts: the band's cells split by distance kind, each (region, kind).
    """
    num_bins, num_frames = spectra.num_bins, spectra.frames.shape[1]
    grids = [(PatchGrid(spectra.frames, num_bins, patch_bins, patch_frames, region), kind, {})
             for region, kind in parts]
    dist, cells = mixed_patch_distance(spectra, grids, "st", beta, eps)  # [B, P]
    valid = cells > 0  # [B, P]
    kgs = knowledge_gap_score(spectra, grids, beta, eps)  # [B, P]
    selected = select_patches(kgs, valid, k, select)  # [B, P]
    weight = selected.float() * cells  # [B, P]
    loss = (weight * dist).sum() / weight.sum().clamp_min(1.0)
    index, _ = patch_index(num_bins, num_frames, patch_bins, patch_frames,
                           spectra.frames.device)  # [F, N]
    return BandSelection(loss, kgs, cells, valid, selected, index, spectra.frames)


def band_cell_map(band: BandSelection, parts: list[Part]) -> dict[str, torch.Tensor]:
    """Per-cell KGS (NaN outside the band) and selection mask of one band.  -> [B, F, N] each"""
    num_bins = band.index.shape[0]
    in_band = None
    for region, _ in parts:
        mask = region_mask(region, band.frames, num_bins).transpose(1, 2)  # [B, F, N]
        in_band = mask if in_band is None else in_band | mask
    kgs = patch_to_cells(band.kgs, band.index)  # [B, F, N]
    mask = patch_to_cells(band.selected, band.index) & in_band  # [B, F, N]
    return {"kgs": torch.where(in_band, kgs, torch.full_like(kgs, float("nan"))), "mask": mask}


def band_suffix(name: str, num_bands: int) -> str:
    """Stat-key suffix of a band: ``_<name>`` when a loss has several bands, else none."""
    return f"_{name}" if num_bands > 1 else ""


def check_selection_conf(k: float, select: str, base: str, **patch_sizes: int) -> None:
    if not 0.0 < float(k) <= 1.0 or math.isnan(float(k)):
        raise ValueError(f"k must be in (0, 1], got {k}")
    if select not in SELECT_MODES:
        raise ValueError(f"unknown select {select!r}; choose one of: {', '.join(SELECT_MODES)}")
    if base not in BASES:
        raise ValueError(f"unknown base {base!r}; choose one of: {', '.join(BASES)}")
    for name, size in patch_sizes.items():
        if int(size) < 1:
            raise ValueError(f"{name} must be >= 1, got {size}")


class SelectivePatchLoss(SpectralKDLoss):
    """Shared forward of DISPatch and MSSP: a loss summed over bands, each with its own selection.

    Subclasses define ``bands(spectra) -> (list of (name, parts, patch_bins), crossover or None)``
    and set ``band_names`` (the names ``bands`` gives, a tuple) and ``reports_crossover`` (bool).
    """

    def __init__(self, base: str, patch_frames: int, k: float, select: str, beta: float,
                 fs: float, eps: float, n_fft: int, hop_length: int, win_length: int,
                 scale_to_ref: bool, crossover_floor_hz: float = 0.0) -> None:
        super().__init__(n_fft, hop_length, win_length, scale_to_ref)
        self.base, self.patch_frames = base, int(patch_frames)
        self.k, self.select, self.beta = float(k), select, check_beta(beta)
        self.fs, self.eps = float(fs), float(eps)
        self.floor_bin = crossover_floor_bin(crossover_floor_hz, n_fft, self.fs)

    def crossover(self, spectra: Spectra) -> torch.Tensor:
        """The DFKD crossover bin of every frame, on the teacher magnitude.  -> [B, N] long"""
        return dfkd_crossover(spectra.quantity("mag_t"), self.eps, self.floor_bin)  # [B, N]

    def bands(self, spectra: Spectra
              ) -> tuple[list[tuple[str, list[Part], int]], Optional[torch.Tensor]]:
        """(band name, parts, patch_bins) of every band, and the crossover [B, N] or None."""
        raise NotImplementedError

    def stat_keys(self) -> tuple[str, ...]:
        """``loss``; per band ``loss_<band>`` (two bands only) and ``BAND_STATS``; the crossover's."""
        keys = ["loss"]
        for name in self.band_names:
            suffix = band_suffix(name, len(self.band_names))
            keys += [f"loss{suffix}"] if suffix else []
            keys += [f"{stat}{suffix}" for stat in BAND_STATS]
        return tuple(keys) + (CROSSOVER_KEYS if self.reports_crossover else ())

    def run(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
            lengths: Optional[torch.Tensor]):
        sp = self.spectra(student_wav, teacher_wav, ref_wav, lengths)
        bands, crossover = self.bands(sp)
        results = [(name, parts, selective_band_loss(sp, parts, patch_bins, self.patch_frames,
                                                     self.k, self.select, self.beta, self.eps))
                   for name, parts, patch_bins in bands]
        return sp, results, crossover

    def forward(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None, **features) -> tuple[torch.Tensor, dict]:
        with full_precision(student_wav.device):
            sp, results, crossover = self.run(student_wav, teacher_wav, ref_wav, lengths)
            loss = sum(band.loss for _, _, band in results)
            stats = {"loss": loss.detach()}
            for name, _, band in results:
                suffix = band_suffix(name, len(results))
                if suffix:
                    stats[f"loss{suffix}"] = band.loss.detach()
                stats.update(band.stats(suffix))
            if crossover is not None:
                stats.update(crossover_stats(crossover, sp.frames, self.n_fft, self.fs))
        return loss, stats

    @torch.no_grad()
    def selection_maps(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor,
                       ref_wav: torch.Tensor, lengths: Optional[torch.Tensor] = None
                       ) -> dict[str, dict[str, torch.Tensor]]:
        """Per-cell KGS and selection mask of every band: {band: {"kgs", "mask"}} of [B, F, N]."""
        with full_precision(student_wav.device):
            _, results, _ = self.run(student_wav, teacher_wav, ref_wav, lengths)
            return {name: band_cell_map(band, parts) for name, parts, band in results}


class DISPatchLoss(SelectivePatchLoss):
    """``dispatch``: DISPatch on one band covering all bins (formulas in the module docstring)."""

    def __init__(self, base: str = "l2_mag", patch_bins: int = 20, patch_frames: int = 1,
                 k: float = 0.8, select: str = "topk", beta: float = 0.5, fs: float = 16000,
                 eps: float = EPS, n_fft: int = 512, hop_length: int = 128, win_length: int = 512,
                 scale_to_ref: bool = False, bands: str = "split",
                 crossover_floor_hz: float = 0.0) -> None:
        check_selection_conf(k, select, base, patch_bins=patch_bins, patch_frames=patch_frames)
        if bands not in BAND_MODES:
            raise ValueError(f"unknown bands {bands!r}; choose one of: {', '.join(BAND_MODES)}")
        super().__init__(base, patch_frames, k, select, beta, fs, eps, n_fft, hop_length,
                         win_length, scale_to_ref, crossover_floor_hz)
        self.patch_bins, self.band_mode = int(patch_bins), bands
        two_bands = base == "dfkd" and bands == "split"
        self.band_names = ("low", "high") if two_bands else ("all",)
        self.reports_crossover = base == "dfkd"

    def bands(self, spectra: Spectra):
        if self.base == "l2_mag":
            return [("all", [((None, None), "l2")], self.patch_bins)], None
        crossover = self.crossover(spectra)  # [B, N]: low f <= m, high f >= m
        low, high = ((None, crossover), "cos"), ((crossover, None), "high")
        if self.band_mode == "pooled":
            return [("all", [low, high], self.patch_bins)], crossover
        return [("low", [low], self.patch_bins), ("high", [high], self.patch_bins)], crossover


def patch_selection_map(kd_loss: nn.Module, student_wav: torch.Tensor, teacher_wav: torch.Tensor,
                        ref_wav: torch.Tensor, lengths: Optional[torch.Tensor] = None
                        ) -> dict[str, dict[str, torch.Tensor]]:
    """KGS map and selected-patch mask of a ``dispatch`` or ``mssp`` loss module.

    Returns {band: {"kgs": [B, F, N] float (NaN outside the band or past the length),
    "mask": [B, F, N] bool}}; the band is ``all`` for DISPatch and ``low``/``high`` for MSSP.
    """
    if not isinstance(kd_loss, SelectivePatchLoss):
        raise ValueError(f"patch_selection_map needs a dispatch or mssp loss, got "
                         f"{type(kd_loss).__name__}")
    return kd_loss.selection_maps(student_wav, teacher_wav, ref_wav, lengths)
