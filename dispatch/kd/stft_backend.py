"""The two STFT paths of the KD losses and which one runs on a device.

Both give the same numbers (a centred, zero-padded STFT as planar real and imaginary parts in
frame-major [B, N, F] layout) and the same gradients; ``STFT_PATHS`` names them:

``custom``  :class:`CentredSTFT`: unfold + rfft, and a hand-written backward
            (irfft + overlap-add); about 2.5x cheaper than ``torch.stft``'s backward on CPU.
``torch``   ``torch.stft`` with autograd's own backward (cuFFT on CUDA).

Both paths give the same numbers only to float rounding (about 1e-7 relative), and a training
run amplifies a one-ulp difference step by step (0.01 in the weights after 420 Adadelta steps of
the kill test's student). So the path must not depend on anything but the device, or the same
command gives different weights on a busy and on a quiet machine, and a run resumed after a kill
leaves the uninterrupted trajectory. The default (``auto``) is therefore a fixed rule per device
type, ``AUTO_BACKEND``: ``custom`` on CPU (measured faster there: see the README), ``torch`` on
CUDA (stock cuFFT, nothing hand-written in the loop). ``DISPATCH_STFT`` in the environment
overrides it on every device:

``custom`` / ``torch``  that path;
``fastest``             time both once per device and process (forward + backward of a
                        [4, 32000] batch, one untimed run, then the fastest of three) and keep the
                        faster one: quicker where the rule guesses wrong, not reproducible.

``chosen_backends()`` lists the choices made in this process (with the timings for ``fastest``).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

BACKENDS = ("custom", "torch")
#: the reproducible default: one fixed path per device type
AUTO_BACKEND: Dict[str, str] = {"cpu": "custom", "cuda": "torch"}
MODES = BACKENDS + ("auto", "fastest")
ENV_VAR = "DISPATCH_STFT"
#: device key ("cpu", "cuda:0", ...) -> {"backend": name, "ms": {name: fwd+bwd ms} or None}
_CHOICES: Dict[str, dict] = {}

Parts = Tuple[torch.Tensor, torch.Tensor]


def torch_stft_parts(wav: torch.Tensor, window: torch.Tensor, n_fft: int, hop_length: int) -> Parts:
    """Plain ``torch.stft`` (centred, zero padding) as planar parts.

    wav: [B, L]; window: [n_fft] (already centred in n_fft) -> (real, imag), each [B, N, F].
    """
    spec = torch.stft(wav, n_fft, hop_length, win_length=n_fft, window=window, center=True,
                      pad_mode="constant", return_complex=True)  # [B, F, N]
    spec = spec.transpose(1, 2)  # [B, N, F]
    return spec.real.contiguous(), spec.imag.contiguous()


class CentredSTFT(torch.autograd.Function):
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


#: the two STFT paths with the same numbers, by backend name
STFT_PATHS: Dict[str, Callable[..., Parts]] = {"custom": CentredSTFT.apply,
                                                "torch": torch_stft_parts}


def _device_key(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    return str(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_backends(paths: Dict[str, Callable[..., Parts]] = STFT_PATHS,
                  device: torch.device = torch.device("cpu"),
                  batch: int = 4, samples: int = 32000, n_fft: int = 512, hop_length: int = 128,
                  repeats: int = 3) -> Dict[str, float]:
    """Fastest forward + backward time (ms) of every STFT path on a random [batch, samples] signal."""
    generator = torch.Generator().manual_seed(0)
    times: Dict[str, float] = {}
    with torch.inference_mode(False), torch.enable_grad():
        wav = torch.randn(batch, samples, generator=generator).to(device)  # [B, L]
        window = torch.hann_window(n_fft, device=device)  # [n_fft]
        for name, path in paths.items():
            best = float("inf")
            for i in range(repeats + 1):
                leaf = wav.detach().requires_grad_(True)
                _sync(device)
                start = time.perf_counter()
                real, imag = path(leaf, window, n_fft, hop_length)  # [B, N, F] each
                (real.square().sum() + imag.abs().sum()).backward()
                _sync(device)
                if i > 0:  # the first run is a warm-up (plans, allocator)
                    best = min(best, time.perf_counter() - start)
            times[name] = 1e3 * best
    return times


def choose_backend(device: torch.device, paths: Dict[str, Callable[..., Parts]] = STFT_PATHS) -> str:
    """The STFT path to use on ``device``: ``$DISPATCH_STFT`` when it names one, else
    ``AUTO_BACKEND`` for the device type, or the measured faster one under ``fastest``."""
    mode = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR}={mode!r} is not an STFT path; use one of: {', '.join(MODES)}")
    if mode in BACKENDS:
        return mode
    key = _device_key(device)
    if key not in _CHOICES or _CHOICES[key]["mode"] != mode:
        if mode == "fastest":
            ms = time_backends(paths, device)
            _CHOICES[key] = {"backend": min(ms, key=ms.get), "ms": ms, "mode": mode}
        else:
            _CHOICES[key] = {"backend": AUTO_BACKEND.get(device.type, "torch"), "ms": None,
                             "mode": mode}
    return _CHOICES[key]["backend"]


def chosen_backends() -> Dict[str, dict]:
    """The automatic choices made so far in this process: device -> {backend, ms, mode}
    (``ms`` is None unless the mode is ``fastest``)."""
    return {key: dict(value) for key, value in _CHOICES.items()}


def reset_choices(device: Optional[str] = None) -> None:
    """Forget the choice for ``device`` (all devices when None), so the next use chooses again."""
    if device is None:
        _CHOICES.clear()
    else:
        _CHOICES.pop(device, None)
