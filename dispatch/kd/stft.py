"""Padding-aware spectra for the STFT-based KD losses (definitions: doc/DESIGN.md, "KD definitions").

Conventions used by every STFT-based KD loss:

* Samples at or past ``lengths[b]`` are set to zero before the STFT, so whatever the padded tail
  of an estimate holds never reaches a loss.
* The STFT is centred with zero (constant) padding and a periodic Hann window of ``win_length``;
  the defaults are ``n_fft=512``, ``hop_length=128``, ``win_length=512``.
* Frame ``n`` of utterance ``b`` is valid iff ``n <= lengths[b] // hop_length``. Invalid frames are
  never scored, selected or counted. With the two rules above an utterance gives the same loss alone
  as zero-padded inside a longer batch.
* Scale: a model trained with SI-SNR has an arbitrary output scale. With ``scale_to_ref=False``
  (default) magnitude KD compares raw magnitudes, which pins the student's scale to the teacher's.
  With ``scale_to_ref=True`` each estimate (student and teacher) is first multiplied by its
  least-squares scale onto the reference, ``alpha = <x, y> / <x, x>`` over the valid samples, so
  only the shape of the estimate is distilled.
* All STFT / Knowledge-Gap-Score / selection math runs in float32 with autocast disabled.
* The teacher estimate is detached: it never receives a gradient.

Speed (``python -m dispatch.bin.benchmark``): the STFT gives planar real/imaginary parts in
frame-major [B, N, F] memory and has its own backward (:mod:`dispatch.kd.stft_backend`); every
per-cell quantity (``|X|^2``, ``Re<A, B>``, ``(|A| - |B|)^2``) is computed once per batch in
:class:`Spectra` and shared by all bands, patch grids (:mod:`dispatch.kd.patches`) and the
Knowledge Gap Score; the reference spectrum is only computed by losses that use it.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from dispatch.kd.base import KDLoss
from dispatch.kd.stft_backend import STFT_PATHS, choose_backend

EPS = 1e-8


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


def hz_to_bin(hz: float, n_fft: int, fs: float) -> int:
    """The STFT bin nearest to ``hz``: ``round(hz * n_fft / fs)`` (Python rounding)."""
    return int(round(float(hz) * n_fft / float(fs)))


def stft_parts(wav: torch.Tensor, n_fft: int = 512, hop_length: int = 128,
               win_length: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Centred STFT with zero padding and a periodic Hann window (``torch.stft``'s numbers).

    wav: [B, L] -> (real, imag), each [B, N, F] contiguous (frame-major), F = n_fft // 2 + 1,
    N = L // hop_length + 1. The window of ``win_length`` is centred in ``n_fft`` as torch does.
    Runs the custom path or ``torch.stft``, the one fixed for the device type
    (:mod:`dispatch.kd.stft_backend`); both give the same numbers and gradients.
    """
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) must be <= n_fft ({n_fft})")
    if not wav.is_floating_point():
        wav = wav.float()
    window = torch.hann_window(win_length, device=wav.device, dtype=wav.dtype)  # [W]
    left = (n_fft - win_length) // 2
    window = F.pad(window, (left, n_fft - win_length - left))  # [n_fft]
    return STFT_PATHS[choose_backend(wav.device)](wav, window, n_fft, hop_length)


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


class SpectralKDLoss(KDLoss):
    """Base of the STFT-based KD losses: the STFT options and the padding-aware spectra.

    Subclasses list ``n_fft``, ``hop_length``, ``win_length`` and ``scale_to_ref`` in their own
    ``__init__`` signature (the registry reads it to validate ``kd_loss_conf``) and pass them on.
    """

    def __init__(self, n_fft: int = 512, hop_length: int = 128, win_length: int = 512,
                 scale_to_ref: bool = False) -> None:
        super().__init__()
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        self.scale_to_ref = scale_to_ref

    def spectra(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor,
                ref_wav: torch.Tensor, lengths: Optional[torch.Tensor]) -> Spectra:
        """Spectra of s, t, y with this loss's STFT options (wavs [B, L], lengths [B])."""
        return compute_spectra(student_wav, teacher_wav, ref_wav, lengths, self.n_fft,
                               self.hop_length, self.win_length, self.scale_to_ref)
