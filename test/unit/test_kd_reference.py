"""The fast STFT-based KD losses against a slow, dense float64 reference: values, selections, gradients.

The reference spells every definition out with per-cell masks and scatter-adds (no shared sums, no
edge tricks), so it checks the vectorised patch machinery of ``dispatch.kd.patches`` and the custom
STFT backward at once. Definitions: the module docstrings of ``dfkd``, ``dispatch_kd`` and ``mssp``.
"""
import math

import pytest
import torch

from dispatch.kd import build_kd_loss, patch_selection_map
from dispatch.kd.dfkd import prefix_max
from dispatch.kd.stft import complex_stft

from helpers import naive_select

N_FFT, HOP, EPS, BETA = 512, 128, 1e-8, 0.5


def ref_spec(x, lengths):
    """Zero past the length, float64 torch.stft.  [B, L] -> [B, F, N] complex128"""
    mask = torch.arange(x.shape[-1])[None] < lengths[:, None]
    x = torch.where(mask, x.double(), torch.zeros((), dtype=torch.float64))
    win = torch.hann_window(N_FFT, dtype=torch.float64)
    return torch.stft(x, N_FFT, HOP, N_FFT, win, center=True, pad_mode="constant",
                      return_complex=True)


def ref_crossover(mag_t):
    """DFKD adapter with Python loops.  [B, F, N] -> [B, N] long"""
    out = torch.zeros(mag_t.shape[0], mag_t.shape[2], dtype=torch.long)
    for b in range(mag_t.shape[0]):
        for n in range(mag_t.shape[2]):
            run, best, arg = [], -math.inf, 0
            for f in range(mag_t.shape[1]):
                run.append(max(run[-1], float(mag_t[b, f, n])) if run else float(mag_t[b, f, n]))
            for f in range(len(run) - 1):
                g = (run[f + 1] - run[f]) / (run[f] + EPS)
                if g > best:
                    best, arg = g, f
            out[b, n] = arg
    return out


def ref_part(a, b, cells, index, num_patches, kind):
    """Per-patch distance of spectra a, b over the masked cells (scatter-add).  -> [B, P] x 2"""
    w = cells.double().reshape(cells.shape[0], -1)

    def psum(x):
        flat = x.reshape(x.shape[0], -1) * w
        return flat.new_zeros(x.shape[0], num_patches).scatter_add(
            1, index.reshape(1, -1).expand_as(flat), flat)

    n = psum(torch.ones_like(a.real))
    l2 = psum((a.abs() - b.abs()) ** 2) / n.clamp_min(1)
    cross = psum(a.real * b.real + a.imag * b.imag)
    norm = psum(a.abs() ** 2).clamp_min(1e-20).sqrt() * psum(b.abs() ** 2).clamp_min(1e-20).sqrt()
    cos = torch.where(n > 0, 1 - cross / (norm + EPS), torch.zeros_like(n))
    dist = {"l2": l2, "cos": cos, "high": BETA * cos + (1 - BETA) * l2}[kind]
    return dist, n


def ref_selective(s, t, y, lengths, bands, k):
    """bands: [(patch_bins, [(cell mask fn(crossover, bins) -> [B, F, N], kind), ...]), ...]."""
    S, T, Y = ref_spec(s, lengths), ref_spec(t, lengths), ref_spec(y, lengths)
    B, F, N = S.shape
    crossover = ref_crossover(T.abs())
    frames = torch.arange(N)[None] <= (lengths // HOP)[:, None]  # [B, N]
    bins = torch.arange(F)[None, :, None]
    total, out = 0.0, []
    for patch_bins, parts in bands:
        index = (torch.arange(F) // patch_bins)[:, None] * N + torch.arange(N)[None]  # [F, N]
        num_patches = -(-F // patch_bins) * N

        def mixed(a, b):
            num, den = 0.0, 0.0
            for mask_fn, kind in parts:
                cells = mask_fn(crossover[:, None, :], bins) & frames[:, None, :]
                d, n = ref_part(a, b, cells, index, num_patches, kind)
                num, den = num + n * d, den + n
            return num / den.clamp_min(1), den

        dist, n = mixed(S, T)
        kgs = (mixed(S, Y)[0] - mixed(T, Y)[0]).detach()
        selected = naive_select(kgs, n > 0, k, "topk")
        weight = selected.double() * n
        total = total + (weight * dist).sum() / weight.sum()
        out.append((kgs, selected, index))
    return total, out


LOW = (lambda m, f: f <= m, "cos")
HIGH = (lambda m, f: f >= m, "high")
CASES = {
    "dispatch_dfkd": ({"base": "dfkd", "patch_bins": 20}, [(20, [LOW]), (20, [HIGH])]),
    "dispatch_dfkdpooled": ({"base": "dfkd", "patch_bins": 20, "bands": "pooled"},
                            [(20, [LOW, HIGH])]),
    "mssp_adaptive": ({}, [(10, [LOW]), (40, [HIGH])]),
    "mssp_fixed_l2": ({"base": "l2_mag", "split": "fixed", "split_hz": 3000},
                      [(10, [(lambda m, f: f < 96, "l2")]), (40, [(lambda m, f: f >= 96, "l2")])]),
}


def speechlike_batch(seed):
    """Harmonic + noise signals (so the crossover is not at bin 0), two lengths."""
    g = torch.Generator().manual_seed(seed)
    n = torch.arange(2600) / 16000
    y = sum(torch.sin(2 * math.pi * 150 * h * n) / h for h in range(1, 12))[None].repeat(2, 1)
    y = y + 0.05 * torch.randn(2, 2600, generator=g)
    t = y + 0.2 * torch.randn(2, 2600, generator=g)
    s = 0.8 * y + 0.5 * torch.randn(2, 2600, generator=g)
    return s, t, y, torch.tensor([2600, 1900])


@pytest.mark.parametrize("case", list(CASES))
def test_selective_losses_match_dense_reference(case):
    conf, bands = CASES[case]
    name = case.split("_")[0]
    s, t, y, lengths = speechlike_batch(3)
    module = build_kd_loss(name, k=0.8, **conf)
    s_fast = s.clone().requires_grad_(True)
    loss, _ = module(s_fast, t, y, lengths)
    loss.backward()
    s_ref = s.double().requires_grad_(True)
    ref_loss, ref_bands = ref_selective(s_ref, t, y, lengths, bands, 0.8)
    ref_loss.backward()
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-4)
    scale = s_ref.grad.abs().max().item()
    torch.testing.assert_close(s_fast.grad.double(), s_ref.grad, rtol=1e-3, atol=1e-4 * scale)
    maps = patch_selection_map(module, s, t, y, lengths)
    for (kgs, selected, index), band in zip(ref_bands, maps.values()):
        cell_sel = selected[:, index.reshape(-1)].reshape(band["mask"].shape) & ~band["kgs"].isnan()
        assert torch.equal(band["mask"], cell_sel)
        cell_kgs = kgs[:, index.reshape(-1)].reshape(band["kgs"].shape)
        inside = ~band["kgs"].isnan()
        torch.testing.assert_close(band["kgs"][inside].double(), cell_kgs[inside],
                                   rtol=1e-3, atol=1e-4)


def test_dfkd_matches_dense_reference():
    s, t, y, lengths = speechlike_batch(5)
    s_fast = s.clone().requires_grad_(True)
    loss, stats = build_kd_loss("dfkd")(s_fast, t, y, lengths)
    loss.backward()
    s_ref = s.double().requires_grad_(True)
    S, T = ref_spec(s_ref, lengths), ref_spec(t, lengths)
    B, F, N = S.shape
    m = ref_crossover(T.abs())[:, None, :]
    frames = torch.arange(N)[None] <= (lengths // HOP)[:, None]
    bins = torch.arange(F)[None, :, None]
    index = torch.arange(N)[None].expand(F, N)  # one patch per frame
    d_low, _ = ref_part(S, T, (bins <= m) & frames[:, None], index, N, "cos")
    d_high, _ = ref_part(S, T, (bins >= m) & frames[:, None], index, N, "high")
    ref = ((d_low + d_high) * frames).sum() / frames.sum()
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-4)
    hz = (m.squeeze(1).double() * frames).sum() / frames.sum() * 16000 / N_FFT
    assert stats["crossover_hz"].item() == pytest.approx(hz.item(), rel=1e-5)
    scale = s_ref.grad.abs().max().item()
    torch.testing.assert_close(s_fast.grad.double(), s_ref.grad, rtol=1e-3, atol=1e-4 * scale)


@pytest.mark.parametrize("n_fft,hop,win", [(512, 128, 512), (400, 160, 320), (256, 100, 256)])
def test_complex_stft_matches_torch_stft_and_its_gradient(n_fft, hop, win):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3001, generator=g, dtype=torch.float64)
    window = torch.hann_window(win, dtype=torch.float64)
    ref = torch.stft(x.float(), n_fft, hop, win, window.float(), center=True, pad_mode="constant",
                     return_complex=True)
    got = complex_stft(x.float(), n_fft, hop, win)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-4)
    wav = x.clone().requires_grad_(True)
    torch.autograd.gradcheck(lambda w: torch.view_as_real(complex_stft(w, n_fft, hop, win)),
                             (wav[:1, :700],), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [1, 2, 7, 64, 257])
def test_prefix_max_matches_cummax(size):
    x = torch.randn(3, 5, size, generator=torch.Generator().manual_seed(size))
    before = x.clone()
    torch.testing.assert_close(prefix_max(x), torch.cummax(x, dim=-1).values, rtol=0, atol=0)
    assert torch.equal(x, before)
