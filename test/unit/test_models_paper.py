"""Models from the papers: tiny forward/backward of every architecture, the Uformer separator's
contract, its registration, and the paper-size recipe configs (build, sizes, AT-KL layer pairs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from helpers import REPO, batch_from_pairs, full_args, real_pairs, tiny_tasnet_config

RECIPES = ("vctk_noisy", "dns_ins20")
PAPER_MODELS = ("teacher_tasnet", "student_tasnet", "teacher_dccrn", "student_dccrn",
                "teacher_uformer")
OVERLAYS = ("kd_atkl_dccrn", "kd_atkl_uformer")
SI_SNR = [{"name": "si_snr", "conf": {"eps": 1.0e-7}, "wrapper": "fixed_order",
           "wrapper_conf": {"weight": 1.0}}]


def stft_config(separator: str, separator_conf: dict, n_fft: int = 128, hop: int = 32) -> dict:
    stft = {"n_fft": n_fft, "win_length": n_fft, "hop_length": hop}
    return {"encoder": "stft", "encoder_conf": dict(stft, use_builtin_complex=True),
            "separator": separator, "separator_conf": separator_conf,
            "decoder": "stft", "decoder_conf": dict(stft), "criterions": SI_SNR,
            "sample_rate": 16000, "init": None}


def tiny_uformer_config(hop: int = 64) -> dict:
    return stft_config("uformer", {"channels": [4, 8, 8], "attention_heads": 2, "ff_hidden": 16,
                                   "num_dilated": 2}, n_fft=128, hop=hop)


def tiny_dccrn_config(layers: int = 3, hop: int = 32) -> dict:
    kernel_num = [4, 8, 8, 8, 8, 8][:layers]
    return stft_config("dccrn", {"kernel_num": kernel_num, "rnn_units": 16}, n_fft=128, hop=hop)


TINY = {
    "uformer": tiny_uformer_config,
    "distil_dccrn": lambda: tiny_dccrn_config(layers=6),
    "dccrn": lambda: tiny_dccrn_config(layers=3),
    "tasnet": lambda: tiny_tasnet_config(),
}


def build(config: dict, seed: int = 0):
    import dispatch.models  # noqa: F401  (registers uformer)
    from espnet2.tasks.enh import EnhancementTask

    torch.manual_seed(seed)
    return EnhancementTask.build_model(full_args(config))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def batch():
    return batch_from_pairs(real_pairs(2, seconds=0.5))


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_forward_backward(name, batch):
    model = build(TINY[name]())
    model.train()
    loss, stats, _ = model(**batch)
    assert torch.isfinite(loss) and "si_snr_loss" in stats
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), name
    assert sum(float(g.abs().sum()) for g in grads) > 0
    model.eval()
    with torch.no_grad():
        est = model.forward_enhance(batch["speech_mix"], batch["speech_mix_lengths"])[0][0]
    assert est.shape == batch["speech_mix"].shape and torch.isfinite(est).all()


def test_uformer_separator_contract():
    from dispatch.models.uformer import UformerSeparator
    from dispatch.kd import FeatureTap

    torch.manual_seed(0)
    sep = UformerSeparator(65, num_spk=2, channels=[4, 8, 8], attention_heads=2, ff_hidden=16,
                           num_dilated=2).eval()
    spec = torch.randn(3, 11, 65, dtype=torch.complex64)  # [B, T, F]
    ilens = torch.tensor([11, 9, 5])
    tap = FeatureTap(sep, ["encoder.0", "encoder.2", "decoder.0", "decoder.2"])
    with torch.no_grad():
        masked, lens, others = sep(spec, ilens)
    assert len(masked) == 2 and all(m.shape == spec.shape and m.is_complex() for m in masked)
    assert torch.equal(lens, ilens) and set(others) == {"mask_spk1", "mask_spk2"}
    enc0, enc2, dec0, dec2 = tap.features  # complex maps [B, 2C, F, T]: channel 1, time last
    assert enc0.shape == (3, 8, 32, 11) and enc2.shape == (3, 16, 8, 11)
    assert dec0.shape == (3, 16, 16, 11) and dec2.shape == (3, 4, 64, 11)
    # zero input gives zero output; ComplexTensor I/O works
    from torch_complex.tensor import ComplexTensor

    sep_ct = UformerSeparator(65, channels=[4, 8], attention_heads=2, ff_hidden=8,
                              num_dilated=1, use_builtin_complex=False).eval()
    zeros = ComplexTensor(torch.zeros(1, 4, 65), torch.zeros(1, 4, 65))
    with torch.no_grad():
        out = sep_ct(zeros, torch.tensor([4]))[0][0]
    assert isinstance(out, ComplexTensor) and float(out.real.abs().max()) == 0.0


def test_uformer_registration_idempotent():
    from dispatch.models.register import register_separators
    from dispatch.models.uformer import UformerSeparator
    from espnet2.tasks.enh import EnhancementTask, separator_choices

    assert register_separators() == register_separators() == ["uformer"]
    assert separator_choices.get_class("uformer") is UformerSeparator
    from dispatch.tasks.enh_distill import EnhDistillTask

    for task in (EnhancementTask, EnhDistillTask):
        args = task.get_parser().parse_args(["--separator", "uformer"])
        assert args.separator == "uformer"


def test_dispatch_bin_enh_train_wrapper():
    from dispatch.bin import enh_train

    assert callable(enh_train.main)
    args = enh_train.get_parser().parse_args(["--separator", "uformer"])
    assert args.separator == "uformer"


def load_config(recipe: str, name: str) -> dict:
    path = REPO / "egs" / recipe / "enh_distill1" / "conf" / "tuning" / f"{name}.yaml"
    return yaml.safe_load(path.read_text())


def test_recipe_configs_identical_and_training_sections():
    for name in PAPER_MODELS + OVERLAYS:
        files = [REPO / "egs" / r / "enh_distill1" / "conf" / "tuning" / f"{name}.yaml"
                 for r in RECIPES]
        assert files[0].read_text() == files[1].read_text(), name
    for name in PAPER_MODELS:
        cfg = load_config(RECIPES[0], name)
        assert cfg["sample_rate"] == 16000
        assert cfg["optim"] == "adam" and cfg["optim_conf"]["lr"] == 1.0e-3
        assert cfg["iterator_type"] == "chunk" and cfg["chunk_length"] > 0
        assert cfg["best_model_criterion"] == [["valid", "si_snr_loss", "min"]]
        assert cfg["criterions"][0]["name"] == "si_snr"
        assert cfg["criterions"][0]["wrapper"] == "fixed_order"
    for name in OVERLAYS:
        assert set(load_config(RECIPES[0], name)) == {"kd_loss", "kd_loss_conf", "kd_weight"}


@pytest.fixture(scope="module")
def paper_models():
    return {name: build(load_config(RECIPES[0], name)) for name in PAPER_MODELS}


def test_paper_configs_build_and_sizes(paper_models):
    sizes = {name: n_params(m) / 1e6 for name, m in paper_models.items()}
    # Conv-TasNet paper hyper-parameters; ESPnet's tcn has no skip 1x1 convs (paper: 5.1M)
    assert 3.3 < sizes["teacher_tasnet"] < 5.5, sizes
    assert 0.15 <= sizes["student_tasnet"] <= 1.0, sizes  # ~0.2M
    assert abs(sizes["teacher_dccrn"] - 3.67) < 0.01, sizes  # DCCRN-CL
    assert 1.0 <= sizes["student_dccrn"] <= 1.1, sizes  # Distil-DCCRN
    assert sizes["teacher_uformer"] > sizes["teacher_dccrn"], sizes
    student = paper_models["student_dccrn"].separator
    assert len(student.encoder) == 6 and len(student.decoder) == 6


@pytest.mark.parametrize("overlay,teacher", [("kd_atkl_dccrn", "teacher_dccrn"),
                                             ("kd_atkl_uformer", "teacher_uformer")])
def test_atkl_overlays_on_paper_models(overlay, teacher, paper_models):
    """Every layer pair exists; the AT-KL loss bridges channel counts and the STFT hops."""
    from dispatch.kd import FeatureTap, build_kd_loss

    cfg = load_config(RECIPES[0], overlay)
    loss_module = build_kd_loss(cfg["kd_loss"], **cfg["kd_loss_conf"])
    pairs = loss_module.feature_pairs
    assert [p[0] for p in pairs] == [p[1] for p in pairs]
    assert {p[0].rsplit(".", 1)[0] for p in pairs} == {"separator.encoder", "separator.decoder"}
    assert len(pairs) == 12
    t_model, s_model = paper_models[teacher].eval(), paper_models["student_dccrn"].eval()
    t_tap = FeatureTap(t_model, [t for t, _ in pairs], name="teacher")
    s_tap = FeatureTap(s_model, [s for _, s in pairs], name="student")
    if teacher != "teacher_uformer":  # same STFT and same layout: the paths are what matters
        t_tap.remove()
        s_tap.remove()
        return
    mix = 0.1 * torch.randn(2, 4000, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([4000, 3000])
    try:
        with torch.no_grad():
            t_wav = t_model.forward_enhance(mix, lengths)[0][0]
            s_wav = s_model.forward_enhance(mix, lengths)[0][0]
            loss, stats = loss_module(s_wav, t_wav, mix, lengths, student_feats=s_tap.features,
                                      teacher_feats=t_tap.features)
        t_frames = t_tap.features[0].shape[-1]
        s_frames = s_tap.features[0].shape[-1]
        assert t_frames < s_frames  # hop 160 vs hop 100
        assert torch.isfinite(loss) and stats["at_time"] >= 0 and stats["at_channel"] >= 0
    finally:
        t_tap.remove()
        s_tap.remove()
