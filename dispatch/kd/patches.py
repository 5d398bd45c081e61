"""The patch grid and the patch distances shared by DFKD, DISPatch and MSSP.

* Patches are ``patch_bins`` consecutive bins x ``patch_frames`` consecutive frames, on a grid
  anchored at bin 0 / frame 0. The last group along each axis is shorter and is never padded.
* Every loss reads per-patch sums of per-cell quantities (:class:`dispatch.kd.stft.Spectra`) over a
  *region* of bins per frame, ``first[b, n] <= f <= last[b, n]`` (None: bin 0 / F-1). Cell
  quantities are frame-major [B, N, F] (bins contiguous), as the FFT gives them. A grid multiplies a
  quantity by its 0/1 cell mask (valid frame and in region) and sums every bin group with one matrix
  product against a [F, G] 0/1 matrix; ``patch_frames`` groups are one more (small) matrix product.
  The backward is the same two products transposed and the same mask, so no per-cell scatter is
  ever needed.
* Distances (``region_distance``): mean squared magnitude difference, complex cosine distance, and
  the DFKD high-band mix of the two; ``mixed_patch_distance`` weighs the distances of a patch's
  parts (regions) by their cells. The losses' formulas are in their own modules.
"""
from __future__ import annotations

from typing import Optional

import torch

from dispatch.kd.stft import EPS, Spectra, cached

#: a band region: (first bin [B, N] long or None, last bin [B, N] long or None)
Region = tuple


def num_groups(size: int, group: int) -> int:
    """Number of groups of ``group`` consecutive items, the last one possibly shorter."""
    return -(-size // group)


def patch_index(num_bins: int, num_frames: int, patch_bins: int, patch_frames: int = 1,
                device: Optional[torch.device] = None) -> tuple[torch.Tensor, int]:
    """Patch id of every (bin, frame) cell on the bin-0 / frame-0 anchored grid.

    Returns (index [F, N] long, P) with ``index[f, n] = (f // patch_bins) * Pn + n // patch_frames``
    and ``P = ceil(F / patch_bins) * ceil(N / patch_frames)``.
    """
    frame_groups = num_groups(num_frames, patch_frames)
    bin_id = torch.arange(num_bins, device=device) // patch_bins  # [F]
    frame_id = torch.arange(num_frames, device=device) // patch_frames  # [N]
    index = bin_id[:, None] * frame_groups + frame_id[None, :]  # [F, N]
    return index, num_groups(num_bins, patch_bins) * frame_groups


def patch_to_cells(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Spread per-patch values back onto the cells of each patch.  [B, P], [F, N] -> [B, F, N]"""
    flat = values[:, index.reshape(-1)]  # [B, F*N]
    return flat.reshape(values.shape[0], *index.shape)  # [B, F, N]


def cosine_from_sums(cross: torch.Tensor, energy_a: torch.Tensor, energy_b: torch.Tensor,
                     eps: float = EPS) -> torch.Tensor:
    """Complex cosine distance ``1 - Re<A,B> / (||A|| ||B|| + eps)`` from its sums.  [...] -> [...]

    The square roots are clamped at 1e-20 so that an all-zero input has a finite (zero) gradient.
    """
    norms = energy_a.clamp_min(1e-20).sqrt() * energy_b.clamp_min(1e-20).sqrt()
    return 1.0 - cross / (norms + eps)


def group_matrix(size: int, group: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """0/1 matrix summing ``group`` consecutive items (last group shorter).  -> [G, size] float32"""
    ids = torch.arange(size, device=device) // group  # [size]
    groups = torch.arange(num_groups(size, group), device=device)  # [G]
    return (groups[:, None] == ids[None, :]).float()  # [G, size]


def region_mask(region: Region, frames: torch.Tensor, num_bins: int,
                dtype: torch.dtype = torch.bool) -> torch.Tensor:
    """Valid in-region cells as 1/True.  region: ([B, N] | None, [B, N] | None), frames [B, N]
    -> [B, N, F] of ``dtype``. Bin numbers are compared as float32 (exact below 2^24) and written
    straight into the float mask: on CPU that is ~8x faster than int64 comparisons to bool."""
    batch, num_frames = frames.shape
    bins = torch.arange(num_bins, device=frames.device, dtype=torch.float32)  # [F]
    first, last = region
    mask = torch.empty(batch, num_frames, num_bins, device=frames.device)  # [B, N, F] float32
    if last is not None:
        torch.le(bins, last.float()[:, :, None], out=mask)
    else:
        mask.fill_(1.0)
    if first is not None:
        mask.mul_(torch.ge(bins, first.float()[:, :, None], out=torch.empty_like(mask)))
    mask.mul_(frames[:, :, None])
    return mask if dtype == torch.float32 else mask.to(dtype)


class PatchGrid:
    """Per-patch sums of cell quantities over one band region of the bin-0 / frame-0 anchored grid.

    frames: [B, N] bool (valid frames); region: (first, last) with [B, N] long or None.
    ``mask``: [B, N, F] float, the valid in-region cells; ``cells``: [B, P] float, their number per
    patch; ``sums(x)``: x [B, N, F] -> [B, P], P = G * Gn ordered as ``patch_index`` (g * Gn + gn).
    """

    def __init__(self, frames: torch.Tensor, num_bins: int, patch_bins: int, patch_frames: int,
                 region: Region = (None, None)) -> None:
        device = frames.device
        self.batch = frames.shape[0]
        self.bin_matrix = group_matrix(num_bins, patch_bins, device).t().contiguous()  # [F, G]
        self.frame_matrix = (group_matrix(frames.shape[1], patch_frames, device).t().contiguous()
                             if patch_frames > 1 else None)  # [N, Gn]
        self.mask = region_mask(region, frames, num_bins, torch.float32)  # [B, N, F]
        self.cells = self._reduce(self.mask)  # [B, P]

    def _reduce(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.bin_matrix).transpose(1, 2)  # [B, N, F] @ [F, G] -> [B, G, N]
        if self.frame_matrix is not None:
            y = torch.matmul(y, self.frame_matrix)  # [B, G, Gn]
        return y.reshape(self.batch, -1)  # [B, P]

    def sums(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of the cell quantity x over the valid in-region cells of every patch.  -> [B, P]"""
        return self._reduce(x * self.mask)  # [B, P]


def region_distance(spectra: Spectra, grid: PatchGrid, kind: str, pair: str, beta: float = 0.5,
                    eps: float = EPS, sums_cache: Optional[dict] = None) -> torch.Tensor:
    """Distance of spectra ``pair`` ("st", "sy" or "ty") in every patch of the grid's region.

    kind ``l2``:   ``mean_p (|A| - |B|)^2``
    kind ``cos``:  ``1 - Re<A,B>_p / (||A||_p ||B||_p + eps)``  (DFKD low band)
    kind ``high``: ``beta * cos + (1 - beta) * l2``              (DFKD high band)
    -> [B, P]. A patch with no cells gets distance 0. Quantities without the student carry no
    gradient; ``sums_cache`` (one per grid) shares the sums between the pairs.
    """
    sums_cache = {} if sums_cache is None else sums_cache

    def total(name: str) -> torch.Tensor:
        grad = torch.is_grad_enabled() and "s" in name.split("_")[1]
        return cached(sums_cache, name, grad, lambda: grid.sums(spectra.quantity(name)))

    cells = grid.cells  # [B, P]
    if kind in ("l2", "high"):
        l2 = total(f"sq_{pair}") / cells.clamp_min(1.0)  # [B, P]
    if kind in ("cos", "high"):
        cos = cosine_from_sums(total(f"cross_{pair}"), total(f"e_{pair[0]}"),
                               total(f"e_{pair[1]}"), eps)  # [B, P]
        cos = torch.where(cells > 0, cos, torch.zeros_like(cos))
    if kind == "l2":
        return l2
    if kind == "cos":
        return cos
    if kind == "high":
        return beta * cos + (1.0 - beta) * l2
    raise ValueError(f"unknown patch distance kind {kind!r}; choose one of: l2, cos, high")


def mixed_patch_distance(spectra: Spectra, grids: list[tuple[PatchGrid, str, dict]], pair: str,
                         beta: float, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell-weighted mix of the part distances of every patch for spectra ``pair`` (st, sy, ty).

    grids: (grid, kind, sums cache) per part -> (distance [B, P], n_p [B, P])
    """
    total, cells = None, None
    for grid, kind, sums in grids:
        dist = region_distance(spectra, grid, kind, pair, beta, eps, sums)  # [B, P]
        n = grid.cells  # [B, P]
        total = n * dist if total is None else total + n * dist  # [B, P]
        cells = n if cells is None else cells + n  # [B, P]
    return total / cells.clamp_min(1.0), cells
