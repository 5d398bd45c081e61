"""Unit tests of the KD losses: registry, exact identities, padding and batch invariance, gradients."""
import math

import pytest
import torch

from dispatch.kd import KD_LOSSES, build_kd_loss, list_kd_losses

SR_LEN = 3000  # samples of the test utterance (< 0.2 s at 16 kHz)


def utterance(seed=0, length=SR_LEN):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(1, length, generator=g)
    t = y + 0.3 * torch.randn(1, length, generator=g)
    s = 0.7 * y + 0.8 * torch.randn(1, length, generator=g)
    return s, t, y


# every method with a small conf; atkl uses synthetic features (see feats())
METHODS = {
    "none": {},
    "l2_mag": {},
    "sisnr": {},
    "dfkd": {},
    "dispatch": {},
    "dispatch_dfkd": {"base": "dfkd", "patch_frames": 2},
    "dispatch_positive": {"select": "topk_positive", "k": 0.5},
    "mssp": {},
    "mssp_fixed_l2": {"base": "l2_mag", "split": "fixed", "split_hz": 3000},
    "atkl": {"layer_pairs": [["t.a", "s.a"], ["t.b", "s.b"]]},
}


def build(key, **extra):
    name = key.split("_")[0] if key.startswith(("dispatch_", "mssp_")) else key
    return build_kd_loss(name, **{**METHODS[key], **extra})


def feats(length, seed=0, batch=1, tail_garbage=None):
    """Synthetic AT-KL features with frames proportional to samples (student hop 100, teacher 50)."""
    g = torch.Generator().manual_seed(seed)
    s_a = torch.randn(1, 4, 6, SR_LEN // 100, generator=g)
    s_b = torch.randn(1, 8, SR_LEN // 100, generator=g)
    t_a = torch.randn(1, 6, 5, SR_LEN // 50, generator=g)
    t_b = torch.complex(torch.randn(1, 3, SR_LEN // 50, generator=g),
                        torch.randn(1, 3, SR_LEN // 50, generator=g))
    out = []
    for f, hop in ((s_a, 100), (s_b, 100), (t_a, 50), (t_b, 50)):
        frames = length // hop
        pad = frames - f.shape[-1]
        if pad:
            tail = torch.randn(*f.shape[:-1], pad, generator=g, dtype=f.dtype) * 50
            f = torch.cat([f, tail], dim=-1)
        out.append(f.expand(batch, *f.shape[1:]).clone())
    s_feats = [x.requires_grad_(True) for x in out[:2]]
    return s_feats, out[2:]


def call(module, s, t, y, lengths, seed=0):
    if module.feature_pairs:
        s_feats, t_feats = feats(s.shape[-1], seed=seed, batch=s.shape[0])
        return module(s, t, y, lengths, student_feats=s_feats, teacher_feats=t_feats)
    return module(s, t, y, lengths)


def test_registry_lists_every_method():
    assert list_kd_losses() == list(KD_LOSSES)
    assert set(list_kd_losses()) >= {"none", "l2_mag", "sisnr", "dfkd", "dispatch", "mssp", "atkl"}


def test_unknown_name_error():
    with pytest.raises(ValueError, match=r"unknown kd_loss 'x'; choose one of: none, l2_mag"):
        build_kd_loss("x")


def test_unknown_conf_key_error_names_bad_and_accepted_keys():
    with pytest.raises(ValueError) as err:
        build_kd_loss("dispatch", patch_bin=20, kk=1)
    msg = str(err.value)
    assert "\n" not in msg
    assert "kk" in msg and "patch_bin" in msg and "patch_bins" in msg and "select" in msg


@pytest.mark.parametrize("conf", [{"k": 0}, {"select": "best"}, {"base": "cos"}, {"patch_bins": 0}])
def test_bad_conf_values(conf):
    with pytest.raises(ValueError):
        build_kd_loss("dispatch", **conf)


def test_none_is_zero_and_has_no_stats():
    s, t, y = utterance()
    s.requires_grad_(True)
    loss, stats = build_kd_loss("none")(s, t, y, torch.tensor([SR_LEN]))
    assert loss.dim() == 0 and loss.item() == 0.0 and stats == {}
    loss.backward()
    assert torch.all(s.grad == 0)


@pytest.mark.parametrize("conf", [{}, {"patch_bins": 7, "patch_frames": 3}, {"select": "positive", "k": 1.0}])
def test_dispatch_k1_equals_l2_mag(conf):
    s, t, y = utterance(1)
    s2, t2, y2 = utterance(2)
    s, t, y = torch.cat([s, s2]), torch.cat([t, t2]), torch.cat([y, y2])
    lengths = torch.tensor([SR_LEN, 2000])
    ref, _ = build_kd_loss("l2_mag")(s, t, y, lengths)
    conf = {"k": 1.0, **conf}
    if conf.get("select") == "positive":  # make every KGS positive: the student is far worse
        s = s * 3.0
        ref, _ = build_kd_loss("l2_mag")(s, t, y, lengths)
    loss, stats = build_kd_loss("dispatch", **conf)(s, t, y, lengths)
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=0)
    assert stats["frac_selected"].item() == 1.0


def test_l2_mag_matches_direct_formula():
    s, t, y = utterance(3)
    lengths = torch.tensor([2500])
    loss, _ = build_kd_loss("l2_mag")(s, t, y, lengths)
    win = torch.hann_window(512)
    cut = lambda x: torch.cat([x[:, :2500], torch.zeros(1, SR_LEN - 2500)], -1)
    S = torch.stft(cut(s), 512, 128, 512, win, center=True, pad_mode="constant", return_complex=True)
    T = torch.stft(cut(t), 512, 128, 512, win, center=True, pad_mode="constant", return_complex=True)
    n_valid = 2500 // 128 + 1
    ref = ((S.abs() - T.abs())[..., :n_valid] ** 2).mean()
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=0)


@pytest.mark.parametrize("key", list(METHODS))
def test_padding_invariance(key):
    s, t, y = utterance(4)
    module = build(key)
    alone, _ = call(module, s, t, y, torch.tensor([SR_LEN]))
    total = 5000
    g = torch.Generator().manual_seed(9)

    def padded(x):
        garbage = 100.0 * torch.randn(2, total - SR_LEN, generator=g)
        return torch.cat([x.expand(2, -1), garbage], dim=-1)

    y_pad = torch.cat([y.expand(2, -1), torch.zeros(2, total - SR_LEN)], dim=-1)
    lengths = torch.tensor([SR_LEN, SR_LEN])
    inside, _ = call(module, padded(s), padded(t), y_pad, lengths)
    torch.testing.assert_close(inside, alone, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("key", list(METHODS))
def test_batch_of_copies_equals_alone(key):
    s, t, y = utterance(5)
    module = build(key)
    alone, alone_stats = call(module, s, t, y, torch.tensor([SR_LEN]))
    copies, copies_stats = call(module, s.repeat(3, 1), t.repeat(3, 1), y.repeat(3, 1),
                                torch.tensor([SR_LEN] * 3))
    torch.testing.assert_close(copies, alone, rtol=2e-5, atol=1e-6)
    for name in alone_stats:
        torch.testing.assert_close(copies_stats[name], alone_stats[name], rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("key", [k for k in METHODS if k != "none"])
def test_no_gradient_reaches_teacher(key):
    s, t, y = utterance(6)
    s, t = s.clone().requires_grad_(True), t.clone().requires_grad_(True)
    module = build(key)
    loss, _ = call(module, s, t, y, torch.tensor([SR_LEN]))
    loss.backward()
    assert t.grad is None or torch.all(t.grad == 0)
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


CROSSOVER = {"crossover_hz", "crossover_hz_p10", "crossover_hz_p50", "crossover_hz_p90"}
SELECTION = {"frac_selected", "kgs_selected", "kgs_unselected"}
TWO_BANDS = ({"loss", "loss_low", "loss_high"} | {f"{k}_{b}" for k in SELECTION for b in ("low", "high")}
             | CROSSOVER)
EXPECTED_STATS = {
    "none": set(),
    "l2_mag": {"loss"},
    "sisnr": {"loss"},
    "dfkd": {"loss", "loss_low", "loss_high"} | CROSSOVER,
    "dispatch": {"loss"} | SELECTION,
    "dispatch_dfkd": TWO_BANDS,
    "dispatch_positive": {"loss"} | SELECTION,
    "mssp": TWO_BANDS,
    "atkl": {"loss", "at_time", "at_channel", "output"},
}
EXPECTED_STATS["mssp_fixed_l2"] = EXPECTED_STATS["mssp"]


@pytest.mark.parametrize("key", list(METHODS))
@pytest.mark.parametrize("silent", ["none", "ref", "teacher", "both", "all"])
def test_stats_and_silence_are_finite(key, silent):
    s, t, y = utterance(7)
    if silent in ("ref", "both", "all"):
        y = torch.zeros_like(y)
    if silent in ("teacher", "both", "all"):
        t = torch.zeros_like(t)
    if silent == "all":
        s = torch.zeros_like(s)
    s = s.clone().requires_grad_(True)
    module = build(key)
    loss, stats = call(module, s, t, y, torch.tensor([SR_LEN]))
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert set(stats) == EXPECTED_STATS[key]
    for value in stats.values():
        assert value.dim() == 0 and torch.isfinite(value)
    loss.backward()
    assert s.grad is None or torch.isfinite(s.grad).all()


def test_selective_stats_values():
    s, t, y = utterance(8)
    _, stats = build_kd_loss("dispatch", k=0.5)(s, t, y, torch.tensor([SR_LEN]))
    num_patches = math.ceil(257 / 20) * (SR_LEN // 128 + 1)
    assert stats["frac_selected"].item() == pytest.approx((num_patches // 2) / num_patches)
    assert stats["kgs_selected"] >= stats["kgs_unselected"]


def test_autocast_keeps_float32():
    s, t, y = utterance(9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, stats = build_kd_loss("mssp")(s.bfloat16(), t.bfloat16(), y.bfloat16(),
                                            torch.tensor([SR_LEN]))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_scale_to_ref_removes_scale():
    s, t, y = utterance(10)
    module = build_kd_loss("l2_mag", scale_to_ref=True)
    a, _ = module(s, t, y, torch.tensor([SR_LEN]))
    b, _ = module(5.0 * s, 0.1 * t, y, torch.tensor([SR_LEN]))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    plain = build_kd_loss("l2_mag")
    assert not torch.isclose(plain(s, t, y)[0], plain(5.0 * s, 0.1 * t, y)[0])
