"""Which STFT the KD losses run on a device: the custom path or plain ``torch.stft``.

Both give the same numbers (a centred, zero-padded STFT as planar real and imaginary parts in
frame-major [B, N, F] layout) and the same gradients:

``custom``  ``dispatch.kd.spectral._CentredSTFT``: unfold + rfft, and a hand-written backward
            (irfft + overlap-add); about 2.5x cheaper than ``torch.stft``'s backward on CPU.
``torch``   ``torch.stft`` with autograd's own backward (cuFFT on CUDA).

The choice is made once per device, the first time a KD loss transforms a signal there: both
paths run forward + backward on a [4, 32000] batch (one untimed run, then the fastest of three),
and the faster one is kept for the rest of the process (``chosen_backends()`` lists the choices
and their times). ``DISPATCH_STFT=custom`` or ``DISPATCH_STFT=torch`` in the environment skips
the measurement and forces a path on every device.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Dict, Optional, Tuple

import torch

BACKENDS = ("custom", "torch")
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


def _device_key(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index}"
    return str(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_backends(paths: Dict[str, Callable[..., Parts]], device: torch.device,
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


def choose_backend(device: torch.device, paths: Dict[str, Callable[..., Parts]]) -> str:
    """The STFT path to use on ``device``: ``$DISPATCH_STFT`` if set, else the faster measured one."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced and forced != "auto":
        if forced not in BACKENDS:
            raise ValueError(f"{ENV_VAR}={forced!r} is not an STFT path; use one of: "
                             f"{', '.join(BACKENDS)} or auto")
        return forced
    key = _device_key(device)
    if key not in _CHOICES:
        ms = time_backends(paths, device)
        _CHOICES[key] = {"backend": min(ms, key=ms.get), "ms": ms}
    return _CHOICES[key]["backend"]


def chosen_backends() -> Dict[str, dict]:
    """The automatic choices made so far in this process: device -> {backend, ms}."""
    return {key: dict(value) for key, value in _CHOICES.items()}


def reset_choices(device: Optional[str] = None) -> None:
    """Forget the choice for ``device`` (all devices when None), so the next use measures again."""
    if device is None:
        _CHOICES.clear()
    else:
        _CHOICES.pop(device, None)
