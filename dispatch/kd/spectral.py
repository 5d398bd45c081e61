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
