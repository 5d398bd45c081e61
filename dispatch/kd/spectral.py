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

Speed (``python -m dispatch.bin.benchmark``): the STFT gives planar real/imaginary parts in
frame-major [B, N, F] memory and has its own backward (irfft + overlap-add, ~2.5x cheaper than
``torch.stft``'s on CPU); every per-cell quantity (``|X|^2``, ``Re<A, B>``, ``(|A| - |B|)^2``) is
computed once per batch and shared by all bands, patch grids and the Knowledge Gap Score; the
reference spectrum is only computed by losses that use it.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from dispatch.kd.stft_backend import choose_backend, torch_stft_parts

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

    wav: [B, L]; lengths: [B] -> [B, L]. On CPU each tail is cleared in place in a copy (reading
    the lengths costs nothing there); elsewhere a mask keeps the device free of host syncs.
    """
    wav = wav.float()
    if wav.device.type == "cpu":
        ends = lengths.tolist()
        if min(ends, default=wav.shape[-1]) >= wav.shape[-1]:
            return wav  # nothing to clear
        out = wav.clone()
        for row, end in enumerate(ends):
            out[row, end:] = 0.0
        return out
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


class _CentredSTFT(torch.autograd.Function):
    """Centred, zero-padded STFT as planar real and imaginary parts, with a cheap backward.

    Forward: frames = unfold(pad(x)) * window, X = rfft(frames) (the numbers of ``torch.stft``),
    returned as two contiguous real tensors so that everything downstream is real arithmetic.
    Backward: for a real loss, dL/dframe_t = Re sum_k G_k e^{+2 pi i k t / n} with
    G = dL/dRe X + i dL/dIm X, which is ``(n / 2) * irfft(G)`` once the DC (and, for even n, the
    Nyquist) bin of G is doubled, because irfft counts every other bin twice; then an overlap-add
    of ``ceil(n_fft / hop)`` shifted adds. ``torch.stft``'s own backward costs ~2.5x this on CPU.
    """

    @staticmethod
    def forward(ctx, wav: torch.Tensor, window: torch.Tensor, n_fft: int, hop_length: int):
        pad = n_fft // 2
        frames = F.pad(wav, (pad, pad)).unfold(-1, n_fft, hop_length) * window  # [B, N, n_fft]
        spec = torch.fft.rfft(frames, dim=-1)  # [B, N, F] complex
        ctx.save_for_backward(window)
        ctx.sizes = (wav.shape[-1], n_fft, hop_length)
        return spec.real.contiguous(), spec.imag.contiguous()  # [B, N, F] each

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_re: torch.Tensor, grad_im: torch.Tensor):
        (window,) = ctx.saved_tensors
        length, n_fft, hop = ctx.sizes
        grad = torch.stack((grad_re, grad_im), dim=-1)  # [B, N, F, 2]
        grad[:, :, 0] *= 2.0
        if n_fft % 2 == 0:
            grad[:, :, -1] *= 2.0
        frames = torch.fft.irfft(torch.view_as_complex(grad), n=n_fft, dim=-1)  # [B, N, n_fft]
        frames = frames * (window * (n_fft / 2.0))  # [B, N, n_fft]
        batch, num_frames = frames.shape[:2]
        shifts = -(-n_fft // hop)
        if shifts * hop != n_fft:
            frames = F.pad(frames, (0, shifts * hop - n_fft))
        frames = frames.reshape(batch, num_frames, shifts, hop)  # [B, N, r, hop]
        out = frames.new_zeros(batch, num_frames + shifts - 1, hop)  # [B, N + r - 1, hop]
        for k in range(shifts):  # frame n, block k lands on output block n + k
            out[:, k:k + num_frames] += frames[:, :, k]
        out = out.reshape(batch, -1)  # [B, L_padded]
        pad = n_fft // 2
        if out.shape[-1] < pad + length:
            out = F.pad(out, (0, pad + length - out.shape[-1]))
        return out[:, pad:pad + length], None, None, None


#: the two STFT paths with the same numbers (dispatch.kd.stft_backend picks one per device)
STFT_PATHS = {"custom": _CentredSTFT.apply, "torch": torch_stft_parts}


def stft_parts(wav: torch.Tensor, n_fft: int = 512, hop_length: int = 128,
               win_length: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred STFT with zero padding and a periodic Hann window (``torch.stft``'s numbers).

    wav: [B, L] -> (real, imag), each [B, N, F] contiguous (frame-major), F = n_fft // 2 + 1,
    N = L // hop_length + 1. The window of ``win_length`` is centred in ``n_fft`` as torch does.
    Runs the custom path or ``torch.stft``, whichever is faster on the device
    (``dispatch.kd.stft_backend``); both give the same numbers and gradients.
    """
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) must be <= n_fft ({n_fft})")
    if not wav.is_floating_point():
        wav = wav.float()
    window = torch.hann_window(win_length, device=wav.device, dtype=wav.dtype)  # [W]
    left = (n_fft - win_length) // 2
    window = F.pad(window, (left, n_fft - win_length - left))  # [n_fft]
    if choose_backend(wav.device, STFT_PATHS) == "torch":  # the faster path on this device
        return torch_stft_parts(wav, window, n_fft, hop_length)
    return _CentredSTFT.apply(wav, window, n_fft, hop_length)


def complex_stft(wav: torch.Tensor, n_fft: int = 512, hop_length: int = 128,
                 win_length: int = 512) -> torch.Tensor:
    """:func:`stft_parts` as one complex tensor in ``torch.stft``'s layout.

    wav: [B, L] or [L] -> [B, F, N] or [F, N] complex.
    """
    squeeze = wav.dim() == 1
    real, imag = stft_parts(wav.reshape(1, -1) if squeeze else wav, n_fft, hop_length, win_length)
    spec = torch.complex(real, imag).transpose(1, 2)  # [B, F, N]
    return spec[0] if squeeze else spec


class _StudentPower(torch.autograd.Function):
    """``e_s = |S|^2``, ``|S|`` and ``sq_st = (|S| - |T|)^2`` from the student's parts, one backward.

    With r = Re S, i = Im S: de_s/dr = 2 r and dsq_st/dr = 2 (|S| - |T|) r / |S| (zero where
    |S| = 0, as ``abs`` has), the same with i; so the gradient is ``(r, i) * coef`` with
    ``coef = 2 g_e + 2 g_sq (|S| - |T|) / |S|``: 7 passes instead of ~25 through autograd.
    ``|S|`` is returned without gradient (for the no-grad Knowledge Gap Score).
    """

    @staticmethod
    def forward(ctx, real: torch.Tensor, imag: torch.Tensor, mag_t: torch.Tensor):
        ctx.set_materialize_grads(False)
        energy = torch.addcmul(real * real, imag, imag)  # [B, N, F]
        mag = energy.sqrt()  # [B, N, F]
        diff = mag - mag_t  # [B, N, F]
        ctx.save_for_backward(real, imag, mag, diff)
        ctx.mark_non_differentiable(mag)
        return energy, mag, diff * diff

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_energy, grad_mag, grad_sq):
        real, imag, mag, diff = ctx.saved_tensors
        if grad_sq is None and grad_energy is None:
            return None, None, None
        if grad_sq is not None:  # g_sq (|S| - |T|) / |S|; the 1e-20 keeps |S| = 0 at 0 * finite
            coef = (grad_sq * diff).div_(mag + 1e-20)
            if grad_energy is not None:
                coef.add_(grad_energy)
        else:
            coef = grad_energy.clone()
        coef.mul_(2.0)
        return real * coef, imag * coef, None


def valid_frame_mask(lengths: torch.Tensor, num_frames: int, hop_length: int) -> torch.Tensor:
    """Frame ``n`` is valid iff ``n <= lengths[b] // hop_length``.  lengths: [B] -> [B, N] bool"""
    frames = torch.arange(num_frames, device=lengths.device)  # [N]
    return frames[None, :] <= (lengths // hop_length)[:, None]  # [B, N]


class Spectra:
    """Student, teacher (detached) and reference spectra of one batch, with cached cell quantities.

    Everything here is frame-major: a cell quantity is [B, N, F] (bins contiguous), which is how the
    FFT gives it and what the patch sums reduce over. ``parts(x)`` is the (real, imag) pair of the
    student ("s"), teacher ("t") or reference ("y") spectrum; the reference is transformed on first
    use (``l2_mag`` never needs it). ``frames``: [B, N] bool. ``quantity(name)`` gives a per-cell
    [B, N, F] float32 quantity, computed once: ``mag_x`` |X|, ``e_x`` |X|^2, ``cross_ab`` Re<A, B>,
    ``sq_ab`` (|A| - |B|)^2, for x, a, b in s, t, y. Those without ``s`` carry no gradient; one with
    gradient serves no-grad uses detached.
    """

    def __init__(self, student: tuple, teacher: tuple, reference, frames: torch.Tensor) -> None:
        self.frames = frames
        self.num_bins = student[0].shape[-1]
        self._parts = {"s": student, "t": teacher}
        self._reference = reference  # () -> (real, imag) of the reference, on first use
        self._cache: dict = {}

    def parts(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(real, imag) of spectrum "s", "t" or "y".  -> 2 x [B, N, F]"""
        if which not in self._parts:
            with torch.no_grad():
                self._parts[which] = self._reference()
        return self._parts[which]

    def quantity(self, name: str) -> torch.Tensor:
        kind, pair = name.split("_")
        grad = torch.is_grad_enabled() and "s" in pair
        if grad and name in ("e_s", "sq_st") and ("e_s", True) not in self._cache:
            energy, mag, sq = _StudentPower.apply(*self.parts("s"), self.quantity("mag_t"))
            self._cache.update({("e_s", True): energy, ("mag_s", False): mag,
                                ("sq_st", True): sq})

        def compute() -> torch.Tensor:
            if kind == "e":
                real, imag = self.parts(pair)
                return torch.addcmul(real * real, imag, imag)
            if kind == "mag":  # the clamp gives |0| a zero (not NaN) gradient
                return self.quantity(f"e_{pair}").clamp_min(1e-30).sqrt()
            if kind == "sq":
                diff = self.quantity(f"mag_{pair[0]}") - self.quantity(f"mag_{pair[1]}")
                return diff * diff  # (x * x is ~4x cheaper than x ** 2 on CPU)
            if kind == "cross":
                (real_a, imag_a), (real_b, imag_b) = self.parts(pair[0]), self.parts(pair[1])
                return torch.addcmul(real_a * real_b, imag_a, imag_b)
            raise ValueError(f"unknown cell quantity {name!r}")

        return cached(self._cache, name, grad, compute)


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


def compute_spectra(student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                    lengths: Optional[torch.Tensor], n_fft: int = 512, hop_length: int = 128,
                    win_length: int = 512, scale_to_ref: bool = False) -> Spectra:
    """Padding-aware spectra of student, teacher and reference. Call inside ``full_precision``.

    wav: [B, L]; lengths: [B] samples. The teacher is detached here.
    """
    lengths = full_lengths(student_wav, lengths)  # [B]
    s = zero_padding(student_wav, lengths)  # [B, L]
    t = zero_padding(teacher_wav.detach(), lengths)  # [B, L]
    y = None
    if scale_to_ref:
        y = zero_padding(ref_wav.detach(), lengths)  # [B, L]
        s = scale_to_reference(s, y)
        t = scale_to_reference(t, y)

    def stft(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return stft_parts(x, n_fft, hop_length, win_length)  # 2 x [B, N, F]

    def reference() -> tuple[torch.Tensor, torch.Tensor]:
        return stft(y if y is not None else zero_padding(ref_wav.detach(), lengths))

    student = stft(s)
    with torch.no_grad():
        teacher = stft(t)
    frames = valid_frame_mask(lengths, student[0].shape[1], hop_length)  # [B, N]
    return Spectra(student, teacher, reference, frames)


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


def patch_to_cells(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Spread per-patch values back onto the cells of each patch.  [B, P], [F, N] -> [B, F, N]"""
    flat = values[:, index.reshape(-1)]  # [B, F*N]
    return flat.reshape(values.shape[0], *index.shape)  # [B, F, N]


# ----------------------------------------------------------------------------- DFKD adapter


def prefix_max(x: torch.Tensor) -> torch.Tensor:
    """``out[..., f] = max(x[..., :f + 1])``, the running maximum along the last axis.

    log2(size) doubling steps between two buffers (x is not modified): on CPU ~2.5x faster than
    ``torch.cummax``, which also writes int64 indices.  [..., F] -> [..., F]
    """
    size = x.shape[-1]
    src, dst, spare = x, torch.empty_like(x), torch.empty_like(x)
    shift = 1
    while shift < size:
        dst[..., :shift] = src[..., :shift]
        torch.maximum(src[..., shift:], src[..., :-shift], out=dst[..., shift:])
        src, dst = dst, (spare if src is x else src)
        shift *= 2
    return src


def hz_to_bin(hz: float, n_fft: int, fs: float) -> int:
    """The STFT bin nearest to ``hz``: ``round(hz * n_fft / fs)`` (Python rounding)."""
    return int(round(float(hz) * n_fft / float(fs)))


def dfkd_crossover(mag_t: torch.Tensor, eps: float = EPS, floor_bin: int = 0) -> torch.Tensor:
    """DFKD frequency adapter: the crossover bin of every frame, from the teacher magnitude.

    ``Fo[f] = max_{f' <= f} |T|[f']`` (running maximum along frequency),
    ``g[f] = (Fo[f+1] - Fo[f]) / (Fo[f] + eps)`` for ``f = 0 .. F-2``, ``m = argmax_f g[f]``
    (the first maximum on ties, so a silent frame gives ``m = 0``). ``floor_bin = 0`` is the
    published adapter. ``floor_bin = c > 0`` (our robust variant) runs the same formula on bins
    ``f >= c`` only, so ``m >= c``: on real speech the largest relative jump of the running maximum
    otherwise falls in the first few bins, where the maximum is still tiny.
    mag_t: [B, N, F] (frame-major) -> [B, N] long
    """
    floor_bin = min(max(int(floor_bin), 0), mag_t.shape[-1] - 2)
    running_max = prefix_max(mag_t[..., floor_bin:] if floor_bin else mag_t)  # [B, N, F']
    low, high = running_max[..., :-1], running_max[..., 1:]  # [B, N, F'-1]
    return ((high - low) / (low + eps)).argmax(dim=-1) + floor_bin  # [B, N]


CROSSOVER_QUANTILES = (0.1, 0.5, 0.9)


def crossover_stats(crossover: torch.Tensor, frames: torch.Tensor, n_fft: int,
                    fs: float) -> dict[str, torch.Tensor]:
    """The crossover's distribution over valid frames, in Hz: ``crossover_hz`` (mean) and
    ``crossover_hz_p10/p50/p90``, quantiles of the empirical distribution (the smallest value whose
    cumulative share reaches q, so a batch of copies gives the same figures as one utterance).
    [B, N], [B, N] -> scalars (no gradient)
    """
    with torch.no_grad():
        hz = crossover.float() * (fs / n_fft)  # [B, N]
        weight = frames.float()  # [B, N]
        stats = {"crossover_hz": (hz * weight).sum() / weight.sum().clamp_min(1.0)}
        ordered = hz[frames].sort().values  # [V]
        if ordered.numel() == 0:
            ordered = hz.new_zeros(1)
        for q in CROSSOVER_QUANTILES:
            rank = max(math.ceil(q * ordered.numel() - 1e-9) - 1, 0)
            stats[f"crossover_hz_p{round(q * 100)}"] = ordered[rank]
    return stats


def cosine_from_sums(cross: torch.Tensor, energy_a: torch.Tensor, energy_b: torch.Tensor,
                     eps: float = EPS) -> torch.Tensor:
    """Complex cosine distance ``1 - Re<A,B> / (||A|| ||B|| + eps)`` from its sums.  [...] -> [...]

    The square roots are clamped at 1e-20 so that an all-zero input has a finite (zero) gradient.
    """
    norms = energy_a.clamp_min(1e-20).sqrt() * energy_b.clamp_min(1e-20).sqrt()
    return 1.0 - cross / (norms + eps)


# ----------------------------------------------------------------------------- patch sums
#
# Every loss reads per-patch sums of per-cell quantities over a *region* of bins per frame,
# ``first[b, n] <= f <= last[b, n]`` (None: bin 0 / F-1). Cell quantities are frame-major
# [B, N, F] (bins contiguous), as the FFT gives them. A grid multiplies a quantity by its 0/1 cell
# mask (valid frame and in region) and sums every bin group with one matrix product against a
# [F, G] 0/1 matrix; ``patch_frames`` groups are one more (small) matrix product. The backward
# is the same two products transposed and the same mask, so no per-cell scatter is ever needed.

Region = tuple  # (first bin [B, N] long or None, last bin [B, N] long or None)


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
