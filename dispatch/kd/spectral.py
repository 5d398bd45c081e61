"""Shared, padding-aware STFT and patch helpers for the KD losses (DESIGN.md section 5).

Conventions used by every STFT-based KD loss:

* Samples at or past ``lengths[b]`` are set to zero before the STFT, so whatever the padded tail
  of an estimate holds never reaches a loss.
* The STFT is centred with zero (constant) padding and a periodic Hann window of ``win_length``;
  the defaults are ``n_fft=512``, ``hop_length=128``, ``win_length=512``.
* Frame ``n`` of utterance ``b`` is valid iff ``n <= lengths[b] // hop_length``. Invalid frames are
  never scored, selected or counted. With the two rules above an utterance gives the same loss alone
  as zero-padded inside a longer batch.
* Patches are ``patch_bins`` consecutive bins x ``patch_frames`` consecutive frames, on a grid
  anchored at bin 0 / frame 0. The last group along each axis is shorter and is never padded.
* Scale: a model trained with SI-SNR has an arbitrary output scale. With ``scale_to_ref=False``
  (default) magnitude KD compares raw magnitudes, which pins the student's scale to the teacher's.
  With ``scale_to_ref=True`` each estimate (student and teacher) is first multiplied by its
  least-squares scale onto the reference, ``alpha = <x, y> / <x, x>`` over the valid samples, so
  only the shape of the estimate is distilled.
* All STFT / Knowledge-Gap-Score / selection math runs in float32 with autocast disabled.
* The teacher estimate is detached: it never receives a gradient.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from torch import nn

EPS = 1e-8
STFT_KEYS = ("n_fft", "hop_length", "win_length")


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Disable autocast for ``device`` so that the enclosed math runs in float32."""
    if device.type in ("cuda", "cpu", "xpu", "mps"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # pragma: no cover - exotic devices
        yield


def full_lengths(wav: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """``lengths`` as a long tensor on ``wav``'s device; all full length when None.  # [B]"""
    if lengths is None:
        return torch.full((wav.shape[0],), wav.shape[-1], dtype=torch.long, device=wav.device)
    return lengths.to(device=wav.device, dtype=torch.long).clamp(0, wav.shape[-1])


def sample_mask(lengths: torch.Tensor, num_samples: int) -> torch.Tensor:
    """True for samples before ``lengths[b]``.  # [B, L] bool"""
    positions = torch.arange(num_samples, device=lengths.device)  # [L]
    return positions[None, :] < lengths[:, None]  # [B, L]


def zero_padding(wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Float32 copy of ``wav`` with samples at or past ``lengths[b]`` set to zero (NaN-safe).

    wav: [B, L]; lengths: [B] -> [B, L]
    """
    wav = wav.float()
    mask = sample_mask(lengths, wav.shape[-1])  # [B, L]
    return torch.where(mask, wav, torch.zeros_like(wav))  # [B, L]


def scale_to_reference(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Multiply each estimate by its least-squares scale onto the reference.

    ``alpha_b = <x_b, y_b> / (<x_b, x_b> + eps)`` minimises ``||alpha x_b - y_b||^2``. Both inputs
    must already be zero past their lengths, so the inner products run over valid samples only.
    estimate, reference: [B, L] -> [B, L]
    """
    dot = (estimate * reference).sum(dim=-1, keepdim=True)  # [B, 1]
    energy = (estimate * estimate).sum(dim=-1, keepdim=True)  # [B, 1]
    return estimate * (dot / (energy + EPS))  # [B, L]


def complex_stft(wav: torch.Tensor, n_fft: int = 512, hop_length: int = 128,
                 win_length: int = 512) -> torch.Tensor:
    """Centred STFT with zero padding and a Hann window.  wav: [B, L] -> [B, F, N] complex64.

    F = n_fft // 2 + 1 and N = L // hop_length + 1.
    """
    window = torch.hann_window(win_length, device=wav.device, dtype=torch.float32)  # [W]
    return torch.stft(wav.float(), n_fft=n_fft, hop_length=hop_length, win_length=win_length,
                      window=window, center=True, pad_mode="constant", return_complex=True)


def valid_frame_mask(lengths: torch.Tensor, num_frames: int, hop_length: int) -> torch.Tensor:
    """Frame ``n`` is valid iff ``n <= lengths[b] // hop_length``.  lengths: [B] -> [B, N] bool"""
    frames = torch.arange(num_frames, device=lengths.device)  # [N]
    return frames[None, :] <= (lengths // hop_length)[:, None]  # [B, N]


def magnitude(spec: torch.Tensor) -> torch.Tensor:
    """|X| of a complex spectrogram (zero gradient at zero).  [B, F, N] -> [B, F, N]"""
    return spec.abs()


@dataclass
class Spectra:
    """Student, teacher (detached) and reference spectra of one batch, plus the frame mask.

    S, T, Y: [B, F, N] complex64; mag_s, mag_t, mag_y: [B, F, N] float32; frames: [B, N] bool.
    """

    S: torch.Tensor
    T: torch.Tensor
    Y: torch.Tensor
    mag_s: torch.Tensor
    mag_t: torch.Tensor
    mag_y: torch.Tensor
    frames: torch.Tensor

    @property
    def cells(self) -> torch.Tensor:
        """Valid (bin, frame) cells as float weights.  # [B, F, N]"""
        return self.frames[:, None, :].expand_as(self.mag_s).float()


def compute_spectra(student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                    lengths: Optional[torch.Tensor], n_fft: int = 512, hop_length: int = 128,
                    win_length: int = 512, scale_to_ref: bool = False) -> Spectra:
    """Padding-aware spectra of student, teacher and reference. Call inside ``full_precision``.

    wav: [B, L]; lengths: [B] samples. The teacher is detached here.
    """
    lengths = full_lengths(student_wav, lengths)  # [B]
    s = zero_padding(student_wav, lengths)  # [B, L]
    t = zero_padding(teacher_wav.detach(), lengths)  # [B, L]
    y = zero_padding(ref_wav.detach(), lengths)  # [B, L]
    if scale_to_ref:
        s = scale_to_reference(s, y)
        t = scale_to_reference(t, y)
    S = complex_stft(s, n_fft, hop_length, win_length)  # [B, F, N]
    T = complex_stft(t, n_fft, hop_length, win_length)  # [B, F, N]
    Y = complex_stft(y, n_fft, hop_length, win_length)  # [B, F, N]
    frames = valid_frame_mask(lengths, S.shape[-1], hop_length)  # [B, N]
    return Spectra(S, T, Y, magnitude(S), magnitude(T), magnitude(Y), frames)


# ----------------------------------------------------------------------------- patch grid


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


def patch_sum(x: torch.Tensor, index: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Sum of ``x`` over the cells of every patch (scatter-add, vectorised).

    x: [B, F, N]; index: [F, N] -> [B, P]
    """
    flat = x.reshape(x.shape[0], -1)  # [B, F*N]
    idx = index.reshape(1, -1).expand_as(flat)  # [B, F*N]
    out = flat.new_zeros(x.shape[0], num_patches)  # [B, P]
    return out.scatter_add(1, idx, flat)  # [B, P]


def patch_to_cells(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Spread per-patch values back onto the cells of each patch.  [B, P], [F, N] -> [B, F, N]"""
    flat = values[:, index.reshape(-1)]  # [B, F*N]
    return flat.reshape(values.shape[0], *index.shape)  # [B, F, N]


# ----------------------------------------------------------------------------- DFKD adapter


def dfkd_crossover(mag_t: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """DFKD frequency adapter: the crossover bin of every frame, from the teacher magnitude.

    ``Fo[f] = max_{f' <= f} |T|[f']`` (running maximum along frequency),
    ``g[f] = (Fo[f+1] - Fo[f]) / (Fo[f] + eps)`` for ``f = 0 .. F-2``, ``m = argmax_f g[f]``
    (the first maximum on ties, so a silent frame gives ``m = 0``).
    mag_t: [B, F, N] -> [B, N] long
    """
    running_max = torch.cummax(mag_t, dim=1).values  # [B, F, N]
    growth = (running_max[:, 1:] - running_max[:, :-1]) / (running_max[:, :-1] + eps)  # [B, F-1, N]
    return growth.argmax(dim=1)  # [B, N]


def band_cells(crossover: torch.Tensor, num_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Low (``f <= m``) and high (``f >= m``) band membership of every cell; bin m is in both.

    crossover: [B, N] -> (low [B, F, N] bool, high [B, F, N] bool)
    """
    bins = torch.arange(num_bins, device=crossover.device)[None, :, None]  # [1, F, 1]
    edge = crossover[:, None, :]  # [B, 1, N]
    return bins <= edge, bins >= edge


def mean_crossover_hz(crossover: torch.Tensor, frames: torch.Tensor, n_fft: int,
                      fs: float) -> torch.Tensor:
    """Mean crossover frequency in Hz over valid frames.  [B, N], [B, N] -> scalar"""
    weight = frames.float()  # [B, N]
    mean_bin = (crossover.float() * weight).sum() / weight.sum().clamp_min(1.0)
    return mean_bin * (fs / n_fft)


# ----------------------------------------------------------------------------- patch distances


def cosine_from_sums(cross: torch.Tensor, energy_a: torch.Tensor, energy_b: torch.Tensor,
                     eps: float = EPS) -> torch.Tensor:
    """Complex cosine distance ``1 - Re<A,B> / (||A|| ||B|| + eps)`` from its sums.  [...] -> [...]

    The square roots are clamped at 1e-20 so that an all-zero input has a finite (zero) gradient.
    """
    norms = energy_a.clamp_min(1e-20).sqrt() * energy_b.clamp_min(1e-20).sqrt()
    return 1.0 - cross / (norms + eps)


def patch_distance(a: torch.Tensor, b: torch.Tensor, mag_a: torch.Tensor, mag_b: torch.Tensor,
                   weight: torch.Tensor, index: torch.Tensor, num_patches: int, kind: str,
                   beta: float = 0.5, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance between spectra ``a`` and ``b`` restricted to the weighted cells of each patch.

    kind ``l2``:   ``mean_p (|A| - |B|)^2``
    kind ``cos``:  ``1 - Re<A,B>_p / (||A||_p ||B||_p + eps)``  (DFKD low band)
    kind ``high``: ``beta * cos + (1 - beta) * l2``              (DFKD high band)
    a, b: [B, F, N] complex; mag_a, mag_b, weight: [B, F, N] -> (distance [B, P], cells [B, P]).
    A patch with no cells gets distance 0.
    """
    cells = patch_sum(weight, index, num_patches)  # [B, P]
    if kind in ("l2", "high"):
        sq = patch_sum(weight * (mag_a - mag_b) ** 2, index, num_patches)  # [B, P]
        l2 = sq / cells.clamp_min(1.0)  # [B, P]
    if kind in ("cos", "high"):
        cross = patch_sum(weight * (a.real * b.real + a.imag * b.imag), index, num_patches)
        energy_a = patch_sum(weight * mag_a ** 2, index, num_patches)  # [B, P]
        energy_b = patch_sum(weight * mag_b ** 2, index, num_patches)  # [B, P]
        cos = cosine_from_sums(cross, energy_a, energy_b, eps)  # [B, P]
        cos = torch.where(cells > 0, cos, torch.zeros_like(cos))
    if kind == "l2":
        out = l2
    elif kind == "cos":
        out = cos
    elif kind == "high":
        out = beta * cos + (1.0 - beta) * l2
    else:
        raise ValueError(f"unknown patch distance kind {kind!r}; choose one of: l2, cos, high")
    return out, cells


# ----------------------------------------------------------------------------- fast patch sums
#
# The helpers above (patch_index / patch_sum / patch_distance) spell out the definitions with
# per-cell weights and a scatter-add; they are kept for reference and plotting. The losses use the
# helpers below, which give the same sums without materialising a per-cell weight per band:
#
# * a band is a *region* of bins per frame, ``first[b, n] <= f <= last[b, n]`` (None: bin 0 / F-1);
# * the sum of a cell quantity over every bin group is one matrix product with a [G, F] 0/1 matrix;
# * only the one group per frame that a region edge cuts needs a partial sum: a gather of
#   ``patch_bins`` bins, so the edge costs ~patch_bins/F of a pass;
# * cell counts are computed from the edges (no pass over the cells); frame validity is applied to
#   the [B, G, N] group sums, and ``patch_frames`` groups are one more (small) matrix product.
# Cancellation stays inside one group (full group sum minus an in-group prefix).

Region = tuple  # (first bin [B, N] long or None, last bin [B, N] long or None)


def group_matrix(size: int, group: int, device: Optional[torch.device] = None) -> torch.Tensor:
    """0/1 matrix summing ``group`` consecutive items (last group shorter).  -> [G, size] float32"""
    ids = torch.arange(size, device=device) // group  # [size]
    groups = torch.arange(num_groups(size, group), device=device)  # [G]
    return (groups[:, None] == ids[None, :]).float()  # [G, size]


class PatchGrid:
    """Per-patch sums of cell quantities over one band region of the bin-0 / frame-0 anchored grid.

    frames: [B, N] bool (valid frames); region: (first, last) with [B, N] long or None.
    ``sums(x)``: x [B, F, N] -> [B, P] with P = G * Gn ordered as ``patch_index`` (g * Gn + gn);
    ``cells``: [B, P] float, the number of valid in-region cells of every patch.
    """

    def __init__(self, frames: torch.Tensor, num_bins: int, patch_bins: int, patch_frames: int,
                 region: Region = (None, None)) -> None:
        device = frames.device
        self.num_bins, self.patch_bins = num_bins, patch_bins
        self.batch, num_frames = frames.shape
        self.matrix = group_matrix(num_bins, patch_bins, device)  # [G, F]
        self.num_bin_groups = self.matrix.shape[0]
        self.frame_matrix = (group_matrix(num_frames, patch_frames, device).t().contiguous()
                             if patch_frames > 1 else None)  # [N, Gn]
        self.frame_weight = frames.float()[:, None, :]  # [B, 1, N]
        groups = torch.arange(self.num_bin_groups, device=device)  # [G]
        self.group_start = (groups * patch_bins)[None, :, None]  # [1, G, 1]
        self.group_size = (num_bins - self.group_start).clamp(max=patch_bins)  # [1, G, 1]
        first, last = region
        self.upper = None if last is None else self._edge(last)
        self.lower = None if first is None else self._edge(first - 1)
        count = self.group_size.expand(self.batch, -1, num_frames).float()  # [B, G, N]
        if self.upper is not None:
            count = self.upper["count"]
        if self.lower is not None:
            count = count - self.lower["count"]
        self.cells = self._reduce_frames(count)  # [B, P]

    def _edge(self, edge: torch.Tensor) -> dict:
        """Gather plan for the in-group prefix sum ``sum_{f <= edge}`` (edge [B, N], may be -1)."""
        edge = edge.long()
        count = (edge[:, None, :] + 1 - self.group_start).clamp(min=0)  # [B, G, N]
        count = torch.minimum(count, self.group_size).float()  # [B, G, N]
        if self.num_bin_groups == 1:  # one group of all bins (DFKD): a mask beats a gather
            bins = torch.arange(self.num_bins, device=edge.device)[None, :, None]  # [1, F, 1]
            return {"mask": (bins <= edge[:, None, :]).float(), "count": count}  # [B, F, N]
        group = edge.clamp(0, self.num_bins - 1) // self.patch_bins  # [B, N]
        offsets = torch.arange(self.patch_bins, device=edge.device)[None, :, None]  # [1, pb, 1]
        positions = (group * self.patch_bins)[:, None, :] + offsets  # [B, pb, N]
        gid = torch.arange(self.num_bin_groups, device=edge.device)[None, :, None]  # [1, G, 1]
        return {
            "index": positions.clamp(max=self.num_bins - 1),  # [B, pb, N]
            "take": (positions <= edge[:, None, :]).float(),  # [B, pb, N]
            "before": (gid < group[:, None, :]).float(),  # [B, G, N] groups wholly <= edge
            "here": (gid == group[:, None, :]).float(),  # [B, G, N] the group the edge cuts
            "count": count,  # [B, G, N]
        }

    @staticmethod
    def _prefix(x: torch.Tensor, full: torch.Tensor, plan: dict) -> torch.Tensor:
        """In-group prefix sums up to the edge.  x [B, F, N], full [B, G, N] -> [B, G, N]"""
        if "mask" in plan:
            return (x * plan["mask"]).sum(dim=1, keepdim=True)  # [B, 1, N]
        partial = (torch.gather(x, 1, plan["index"]) * plan["take"]).sum(dim=1)  # [B, N]
        return full * plan["before"] + partial[:, None, :] * plan["here"]  # [B, G, N]

    def _reduce_frames(self, y: torch.Tensor) -> torch.Tensor:
        y = y * self.frame_weight  # [B, G, N]
        if self.frame_matrix is not None:
            y = torch.matmul(y, self.frame_matrix)  # [B, G, Gn]
        return y.reshape(self.batch, -1)  # [B, P]

    def sums(self, x: torch.Tensor) -> torch.Tensor:
        """Sum of the cell quantity x over the valid in-region cells of every patch.  -> [B, P]"""
        full = torch.matmul(self.matrix, x)  # [B, G, N]
        out = full if self.upper is None else self._prefix(x, full, self.upper)
        if self.lower is not None:
            out = out - self._prefix(x, full, self.lower)
        return self._reduce_frames(out)  # [B, P]


def region_mask(region: Region, frames: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Valid in-region cells.  region: ([B, N] | None, [B, N] | None), frames [B, N] -> [B, F, N]"""
    bins = torch.arange(num_bins, device=frames.device)[None, :, None]  # [1, F, 1]
    mask = frames[:, None, :].expand(-1, num_bins, -1)  # [B, F, N]
    first, last = region
    if first is not None:
        mask = mask & (bins >= first[:, None, :])
    if last is not None:
        mask = mask & (bins <= last[:, None, :])
    return mask


#: cell quantities of a pair (a, b) of spectra: ``cross`` Re<a, b>, ``sq`` (|a| - |b|)^2, ``e`` |a|^2
def cell_quantity(spectra: Spectra, name: str) -> torch.Tensor:
    """A per-cell quantity, cached on ``spectra``: cross_st, cross_sy, cross_ty, sq_st, sq_sy,
    sq_ty, e_s, e_t, e_y.  -> [B, F, N] float32 (those without ``s`` carry no gradient)."""
    cache = spectra.__dict__.setdefault("_cell_cache", {})
    kind, pair = name.split("_")
    grad = torch.is_grad_enabled() and "s" in pair

    def compute() -> torch.Tensor:
        spec = {"s": spectra.S, "t": spectra.T, "y": spectra.Y}
        mag = {"s": spectra.mag_s, "t": spectra.mag_t, "y": spectra.mag_y}
        if kind == "e":
            return mag[pair] * mag[pair]
        if kind == "sq":
            return (mag[pair[0]] - mag[pair[1]]) ** 2
        a, b = spec[pair[0]], spec[pair[1]]  # cross
        return torch.addcmul(a.real * b.real, a.imag, b.imag)

    return cached(cache, name, grad, compute)


def cached(cache: dict, name: str, grad: bool, compute) -> torch.Tensor:
    """``compute()`` once per (name, grad); a value with gradient serves no-grad uses detached."""
    if (name, True) in cache:
        value = cache[(name, True)]
        return value if grad else value.detach()
    if not grad and (name, False) in cache:
        return cache[(name, False)]
    with torch.set_grad_enabled(grad):
        value = compute()
    cache[(name, grad)] = value
    return value


def region_distance(spectra: Spectra, grid: PatchGrid, kind: str, pair: str, beta: float = 0.5,
                    eps: float = EPS, sums_cache: Optional[dict] = None) -> torch.Tensor:
    """``patch_distance`` of spectra ``pair`` ("st", "sy" or "ty") over the grid's region.  -> [B, P]

    A patch with no cells gets distance 0. Quantities without the student carry no gradient;
    ``sums_cache`` (one per grid) shares the sums between the pairs (detached where no gradient).
    """
    sums_cache = {} if sums_cache is None else sums_cache

    def total(name: str) -> torch.Tensor:
        grad = torch.is_grad_enabled() and "s" in name.split("_")[1]
        return cached(sums_cache, name, grad, lambda: grid.sums(cell_quantity(spectra, name)))

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


class SpectralKDLoss(nn.Module):
    """Base of the STFT-based KD losses: the STFT options and the padding-aware spectra.

    Subclasses list ``n_fft``, ``hop_length``, ``win_length`` and ``scale_to_ref`` in their own
    ``__init__`` signature (the registry reads it to validate ``kd_loss_conf``) and pass them on.
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 128, win_length: int = 512,
                 scale_to_ref: bool = False) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.scale_to_ref = scale_to_ref
        self.feature_pairs: list = []  # output-level KD: no intermediate features

    def spectra(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor,
                ref_wav: torch.Tensor, lengths: Optional[torch.Tensor]) -> "Spectra":
        """Spectra of s, t, y with this loss's STFT options (wavs [B, L], lengths [B])."""
        return compute_spectra(student_wav, teacher_wav, ref_wav, lengths, self.n_fft,
                               self.hop_length, self.win_length, self.scale_to_ref)
