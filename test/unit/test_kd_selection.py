"""Patch grid, Knowledge Gap Score and selection against naive loop implementations; MSSP bands."""
import math

import pytest
import torch

from dispatch.kd import build_kd_loss, patch_selection_map, select_patches
from dispatch.kd.patches import patch_index

from helpers import naive_select

N_FFT, HOP = 512, 128


@pytest.mark.parametrize("mode", ["topk", "positive", "topk_positive"])
@pytest.mark.parametrize("k", [0.8, 0.29, 1.0, 0.01])
def test_select_patches_matches_naive(mode, k):
    g = torch.Generator().manual_seed(1)
    kgs = torch.randn(4, 37, generator=g)
    valid = torch.rand(4, 37, generator=g) > 0.3
    valid[3] = False
    valid[3, 5] = True  # one valid patch: m = 1
    got = select_patches(kgs, valid, k, mode)
    assert torch.equal(got, naive_select(kgs, valid, k, mode))


def test_patch_index_grid_is_bin0_anchored_last_group_shorter():
    index, num = patch_index(257, 5, 20, 2)
    assert num == 13 * 3
    assert index[0, 0] == 0 and index[19, 1] == 0 and index[20, 0] == 3 and index[0, 2] == 1
    assert index[256, 4] == 12 * 3 + 2
    sizes = torch.bincount(index.reshape(-1), minlength=num).reshape(13, 3)
    assert sizes[:12, :2].eq(40).all() and sizes[12, 0] == 17 * 2 and sizes[12, 2] == 17


def spectra(s, lengths):
    win = torch.hann_window(N_FFT)
    mask = torch.arange(s.shape[-1])[None] < lengths[:, None]
    x = torch.where(mask, s, torch.zeros_like(s))
    return torch.stft(x, N_FFT, HOP, N_FFT, win, center=True, pad_mode="constant",
                      return_complex=True).abs()


def naive_dispatch(s, t, y, lengths, patch_bins, patch_frames, k, lo=0, hi=None):
    """Loop reference: KGS, selection and l2 loss on bins [lo, hi) (grid still anchored at 0)."""
    S, T, Y = spectra(s, lengths), spectra(t, lengths), spectra(y, lengths)
    num_bins, num_frames = S.shape[1:]
    hi = num_bins if hi is None else hi
    kgs_map = torch.full(S.shape, float("nan"))
    mask = torch.zeros(S.shape, dtype=torch.bool)
    num, den = 0.0, 0
    for b in range(S.shape[0]):
        last = int(lengths[b]) // HOP
        patches = []
        for f0 in range(0, num_bins, patch_bins):
            for n0 in range(0, num_frames, patch_frames):
                cells = [(f, n) for f in range(f0, min(f0 + patch_bins, num_bins))
                         for n in range(n0, min(n0 + patch_frames, num_frames))
                         if lo <= f < hi and n <= last]
                if not cells:
                    continue
                e_s = sum(float(S[b, f, n] - Y[b, f, n]) ** 2 for f, n in cells) / len(cells)
                e_t = sum(float(T[b, f, n] - Y[b, f, n]) ** 2 for f, n in cells) / len(cells)
                patches.append((e_s - e_t, len(patches), cells))
        keep = max(1, math.floor(k * len(patches)))
        chosen = sorted(patches, key=lambda p: (-p[0], p[1]))[:keep]
        for gap, _, cells in patches:
            for f, n in cells:
                kgs_map[b, f, n] = gap
        for _, _, cells in chosen:
            for f, n in cells:
                mask[b, f, n] = True
                num += float(S[b, f, n] - T[b, f, n]) ** 2
                den += 1
    return kgs_map, mask, num / den


def batch(seed=0, length=2000):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(2, length, generator=g)
    t = y + 0.3 * torch.randn(2, length, generator=g)
    s = y + 0.6 * torch.randn(2, length, generator=g)
    return s, t, y, torch.tensor([length, 1500])


@pytest.mark.parametrize("patch_bins,patch_frames", [(20, 1), (30, 3)])
def test_dispatch_selection_matches_naive_loops(patch_bins, patch_frames):
    s, t, y, lengths = batch(1)
    module = build_kd_loss("dispatch", patch_bins=patch_bins, patch_frames=patch_frames, k=0.8)
    maps = patch_selection_map(module, s, t, y, lengths)["all"]
    kgs_ref, mask_ref, loss_ref = naive_dispatch(s, t, y, lengths, patch_bins, patch_frames, 0.8)
    assert torch.equal(maps["mask"], mask_ref)
    torch.testing.assert_close(maps["kgs"], kgs_ref, rtol=1e-4, atol=1e-5, equal_nan=True)
    loss, _ = module(s, t, y, lengths)
    assert loss.item() == pytest.approx(loss_ref, rel=1e-4)


def test_mssp_fixed_band_boundaries_and_grid():
    s, t, y, lengths = batch(2)
    module = build_kd_loss("mssp", base="l2_mag", split="fixed", split_hz=4000, fs=16000, k=0.8)
    assert module.split_bin == 128
    maps = patch_selection_map(module, s, t, y, lengths)
    low, high = maps["low"], maps["high"]
    frames = 1500 // HOP + 1  # valid frames of utterance 1
    assert not torch.isnan(low["kgs"][1, :128, :frames]).any()
    assert torch.isnan(low["kgs"][1, 128:]).all() and torch.isnan(low["kgs"][1, :, frames:]).all()
    assert not torch.isnan(high["kgs"][1, 128:, :frames]).any()
    assert torch.isnan(high["kgs"][1, :128]).all()
    # high band patch 120..159 holds only bins 128..159; low band patch 120..129 only 120..127
    h = high["kgs"][0, :, 3]
    assert torch.all(h[128:160] == h[128]) and h[160] != h[128]
    lo = low["kgs"][0, :, 3]
    assert torch.all(lo[120:128] == lo[120]) and lo[119] != lo[120]
    # per band selection: m = floor(0.8 * P) of 13 low / 4 high patches per valid frame
    kgs_ref, mask_ref, _ = naive_dispatch(s, t, y, lengths, 10, 1, 0.8, hi=128)
    assert torch.equal(low["mask"], mask_ref)
    torch.testing.assert_close(low["kgs"], kgs_ref, rtol=1e-4, atol=1e-5, equal_nan=True)
    kgs_ref, mask_ref, _ = naive_dispatch(s, t, y, lengths, 40, 1, 0.8, lo=128)
    assert torch.equal(high["mask"], mask_ref)
    _, stats = module(s, t, y, lengths)
    n0, n1 = 2000 // HOP + 1, frames
    assert stats["frac_selected_low"].item() == pytest.approx(
        (math.floor(0.8 * 13 * n0) + math.floor(0.8 * 13 * n1)) / (13 * (n0 + n1)))
    assert stats["frac_selected_high"].item() == pytest.approx(
        (math.floor(0.8 * 4 * n0) + math.floor(0.8 * 4 * n1)) / (4 * (n0 + n1)))
    assert stats["crossover_hz"].item() == pytest.approx(4000.0)


def test_mssp_k1_fixed_equals_sum_of_band_l2():
    s, t, y, lengths = batch(3)
    loss, stats = build_kd_loss("mssp", base="l2_mag", split="fixed", split_hz=5000, k=1.0)(
        s, t, y, lengths)
    S, T = spectra(s, lengths), spectra(t, lengths)
    valid = torch.arange(S.shape[-1])[None] <= (lengths // HOP)[:, None]  # [B, N]
    split = round(5000 * N_FFT / 16000)
    sq = (S - T) ** 2 * valid[:, None, :]
    low = sq[:, :split].sum() / (valid.sum() * split)
    high = sq[:, split:].sum() / (valid.sum() * (S.shape[1] - split))
    torch.testing.assert_close(loss, low + high, rtol=1e-5, atol=0)
    torch.testing.assert_close(stats["loss_low"], low, rtol=1e-5, atol=0)


def test_mssp_adaptive_runs_and_reports_crossover():
    s, t, y, lengths = batch(4)
    module = build_kd_loss("mssp", split="adaptive")
    loss, stats = module(s, t, y, lengths)
    assert torch.isfinite(loss)
    assert 0.0 <= stats["crossover_hz"].item() <= 8000.0
    maps = patch_selection_map(module, s, t, y, lengths)
    low_in = ~torch.isnan(maps["low"]["kgs"])
    high_in = ~torch.isnan(maps["high"]["kgs"])
    both = low_in & high_in  # the boundary bin is in both bands: exactly one per valid frame
    valid_frames = (torch.arange(s.shape[-1] // HOP + 1)[None] <= (lengths // HOP)[:, None])
    assert torch.equal(both.sum(dim=1), valid_frames.long())
    assert torch.equal(low_in | high_in, valid_frames[:, None, :].expand_as(low_in))


@pytest.mark.parametrize("patch_bins,k,floor_hz", [(20, 0.8, 0.0), (10, 0.5, 0.0), (20, 0.8, 500.0)])
def test_dispatch_dfkd_is_two_band_mssp_with_equal_patches(patch_bins, k, floor_hz):
    """The authors' DFKD + DISPatch: two bands, own grid/top-k/normalisation, summed = mssp."""
    s, t, y, lengths = batch(6)
    conf = dict(k=k, crossover_floor_hz=floor_hz)
    dispatch = build_kd_loss("dispatch", base="dfkd", patch_bins=patch_bins, **conf)
    mssp = build_kd_loss("mssp", base="dfkd", split="adaptive", low_patch_bins=patch_bins,
                         high_patch_bins=patch_bins, **conf)
    s1, s2 = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    loss_d, stats_d = dispatch(s1, t, y, lengths)
    loss_m, stats_m = mssp(s2, t, y, lengths)
    torch.testing.assert_close(loss_d, loss_m, rtol=0, atol=0)
    assert set(stats_d) == set(stats_m)
    for key in stats_d:
        torch.testing.assert_close(stats_d[key], stats_m[key], rtol=0, atol=0)
    (loss_d + loss_m).backward()
    torch.testing.assert_close(s1.grad, s2.grad, rtol=0, atol=0)
    pooled, _ = build_kd_loss("dispatch", base="dfkd", patch_bins=patch_bins, bands="pooled",
                              **conf)(s, t, y, lengths)
    assert not torch.isclose(pooled, loss_d)


def test_crossover_floor_bounds_the_adapter_and_zero_is_published():
    from dispatch.kd.dfkd import dfkd_crossover
    g = torch.Generator().manual_seed(2)
    mag = torch.rand(2, 7, 257, generator=g)
    mag[..., 3] = 50.0  # a jump at bin 3: the published adapter picks it
    published = dfkd_crossover(mag)
    assert torch.equal(published, torch.full((2, 7), 2))
    assert torch.equal(dfkd_crossover(mag, floor_bin=0), published)
    floored = dfkd_crossover(mag, floor_bin=16)  # 500 Hz at n_fft 512, 16 kHz
    assert floored.min() >= 16
    ref = dfkd_crossover(mag[..., 16:]) + 16
    assert torch.equal(floored, ref)


def test_crossover_distribution_stats_over_valid_frames():
    from dispatch.kd.dfkd import crossover_stats
    crossover = torch.tensor([[1, 2, 3, 4, 200], [10, 10, 10, 10, 10]])
    frames = torch.tensor([[True, True, True, True, False], [True, True, False, False, False]])
    stats = crossover_stats(crossover, frames, 512, 16000.0)
    valid = torch.tensor([1.0, 2, 3, 4, 10, 10]) * 16000 / 512
    assert stats["crossover_hz"].item() == pytest.approx(valid.mean().item())
    # inverse empirical CDF over the 6 valid frames: p10 -> 1st, p50 -> 3rd, p90 -> 6th value
    assert stats["crossover_hz_p10"].item() == pytest.approx(valid[0].item())
    assert stats["crossover_hz_p50"].item() == pytest.approx(valid[2].item())
    assert stats["crossover_hz_p90"].item() == pytest.approx(valid[5].item())


def test_dispatch_dfkd_k1_cell_weighted_mean():
    """With k=1, dispatch(dfkd) selects every patch of both bands and reports the crossover."""
    s, t, y, lengths = batch(5)
    loss, stats = build_kd_loss("dispatch", base="dfkd", k=1.0)(s, t, y, lengths)
    assert torch.isfinite(loss)
    assert stats["frac_selected_low"] == 1.0 and stats["frac_selected_high"] == 1.0
    assert 0.0 <= stats["crossover_hz"] <= 8000.0
