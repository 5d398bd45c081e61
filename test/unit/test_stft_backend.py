"""The two STFT paths of the KD losses (custom and torch.stft) give the same numbers and gradients,
and the per-device choice between them works (automatic, or forced by DISPATCH_STFT)."""
from __future__ import annotations

import pytest
import torch

from dispatch.kd import build_kd_loss
from dispatch.kd import stft_backend
from dispatch.kd.stft import stft_parts
from dispatch.kd.stft_backend import STFT_PATHS


@pytest.mark.parametrize("n_fft,hop,win,length", [(512, 128, 512, 16000), (512, 100, 400, 12345),
                                                  (256, 64, 200, 999), (255, 60, 255, 3001)])
def test_custom_and_torch_stft_agree(n_fft, hop, win, length):
    generator = torch.Generator().manual_seed(0)
    wav = torch.randn(3, length, generator=generator, dtype=torch.float64)  # [B, L]
    weights = torch.randn(3, length // hop + 1, n_fft // 2 + 1, generator=generator,
                          dtype=torch.float64)  # [B, N, F]
    window = torch.hann_window(win, dtype=torch.float64)
    left = (n_fft - win) // 2
    window = torch.nn.functional.pad(window, (left, n_fft - win - left))  # [n_fft]
    outputs, grads = {}, {}
    for name, path in STFT_PATHS.items():
        leaf = wav.clone().requires_grad_(True)
        real, imag = path(leaf, window, n_fft, hop)  # [B, N, F] each
        assert real.shape == weights.shape and real.is_contiguous() and imag.is_contiguous()
        (weights * real.square() + imag.abs()).sum().backward()
        outputs[name], grads[name] = (real, imag), leaf.grad
    for a, b in zip(outputs["custom"], outputs["torch"]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads["custom"], grads["torch"], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method,conf", [("l2_mag", {}), ("dfkd", {}), ("mssp", {}),
                                         ("dispatch", {"base": "dfkd"})])
def test_kd_losses_equal_on_both_paths(monkeypatch, method, conf):
    generator = torch.Generator().manual_seed(1)
    ref = torch.randn(2, 8000, generator=generator)  # [B, L]
    teacher = ref + 0.1 * torch.randn(2, 8000, generator=generator)  # [B, L]
    student = ref + 0.3 * torch.randn(2, 8000, generator=generator)  # [B, L]
    lengths = torch.tensor([8000, 6100])
    loss_module = build_kd_loss(method, **conf)
    values, grads = {}, {}
    for backend in stft_backend.BACKENDS:
        monkeypatch.setenv(stft_backend.ENV_VAR, backend)
        leaf = student.clone().requires_grad_(True)
        loss, _ = loss_module(leaf, teacher, ref, lengths)
        loss.backward()
        values[backend], grads[backend] = loss.detach(), leaf.grad
    torch.testing.assert_close(values["custom"], values["torch"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grads["custom"], grads["torch"], rtol=1e-4, atol=1e-8)


def test_automatic_choice_is_fixed_per_device_type_and_never_timed(monkeypatch):
    """A timed choice made training results depend on machine load (issue 13: a resumed run left
    the uninterrupted trajectory when the other path won the timing): ``auto`` must not time."""
    monkeypatch.delenv(stft_backend.ENV_VAR, raising=False)
    stft_backend.reset_choices()

    def no_timing(*args, **kwargs):
        raise AssertionError("the automatic STFT choice must not be timed")

    monkeypatch.setattr(stft_backend, "time_backends", no_timing)
    wav = torch.randn(2, 4000)
    first = stft_parts(wav)
    choice = stft_backend.chosen_backends()["cpu"]
    assert choice == {"backend": "custom", "ms": None, "mode": "auto"}
    assert stft_backend.AUTO_BACKEND == {"cpu": "custom", "cuda": "torch"}
    torch.testing.assert_close(first, stft_parts(wav))
    stft_backend.reset_choices("cpu")
    assert "cpu" not in stft_backend.chosen_backends()


def test_fastest_mode_is_measured_once_per_device(monkeypatch):
    monkeypatch.setenv(stft_backend.ENV_VAR, "fastest")
    stft_backend.reset_choices()
    calls = []
    original = stft_backend.time_backends

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, samples=4000, repeats=1)

    monkeypatch.setattr(stft_backend, "time_backends", counting)
    wav = torch.randn(2, 4000)
    first = stft_parts(wav)
    second = stft_parts(wav)
    choice = stft_backend.chosen_backends()["cpu"]
    assert len(calls) == 1 and choice["backend"] in stft_backend.BACKENDS
    assert set(choice["ms"]) == set(stft_backend.BACKENDS) and min(choice["ms"].values()) > 0
    torch.testing.assert_close(first, second)
    stft_backend.reset_choices()


def test_forced_backend_and_bad_value(monkeypatch):
    monkeypatch.setenv(stft_backend.ENV_VAR, "torch")
    assert stft_backend.choose_backend(torch.device("cpu"), STFT_PATHS) == "torch"
    monkeypatch.setenv(stft_backend.ENV_VAR, "cufft")
    with pytest.raises(ValueError, match="DISPATCH_STFT='cufft' is not an STFT path"):
        stft_parts(torch.randn(1, 1000))
