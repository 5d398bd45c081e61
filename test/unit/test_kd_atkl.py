"""AT-KL on real ESPnet separators through FeatureTap, and FeatureTap itself."""
import pytest
import torch
from torch import nn

from dispatch.kd import FeatureTap, build_kd_loss
from dispatch.kd.atkl import attention_energy, attention_kl, valid_feature_frames


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(1, 3, 3, padding=1), nn.ReLU())
        self.rnn = nn.LSTM(3, 4, batch_first=True)

    def forward(self, x):  # [B, 1, T]
        h = self.body(x)  # [B, 3, T]
        out, _ = self.rnn(h.transpose(1, 2))  # [B, T, 4]
        return out


def test_feature_tap_bad_path_names_the_closest_paths():
    with pytest.raises(ValueError) as err:
        FeatureTap(Toy(), ["body.0", "body.9"], name="student")
    msg = str(err.value)
    assert msg.startswith("no module 'body.9' in student; closest: body.0, body.1, body, rnn;")
    assert "rnn" in msg and "\n" not in msg
    assert msg.endswith("python -m dispatch.bin.list_modules --config <the student's config.yaml>")


def test_feature_tap_error_stays_short_for_big_models():
    model = nn.Sequential(*[nn.Sequential(nn.Identity(), nn.Identity()) for _ in range(300)])
    with pytest.raises(ValueError) as err:
        FeatureTap(model, ["12.3"], name="teacher")
    msg = str(err.value)
    assert len(msg) < 300 and "closest: 12.0, 12.1, 12, " in msg and "all 900: " in msg, msg


def test_feature_tap_collects_clears_and_removes():
    model = Toy()
    tap = FeatureTap(model, ["rnn", "body.0"])
    with pytest.raises(RuntimeError, match="rnn"):
        tap.features
    model(torch.randn(2, 1, 7))
    rnn_out, conv_out = tap.features
    assert rnn_out.shape == (2, 7, 4) and conv_out.shape == (2, 3, 7)  # tuple -> first tensor
    tap.clear()
    with pytest.raises(RuntimeError):
        tap.features
    tap.remove()
    model(torch.randn(2, 1, 7))
    assert tap._store == {}


def test_attention_vectors_and_kl_basics():
    feat = torch.arange(24.0).reshape(1, 2, 3, 4)  # [B, C, F, T]
    a_time, a_chan = attention_energy(feat, 1, -1, 2.0, None)
    assert torch.allclose(a_time, (feat ** 2).sum(dim=(1, 2)))
    assert torch.allclose(a_chan, (feat ** 2).sum(dim=(2, 3)))
    assert attention_kl(a_time, a_time, None, 1.0).abs() < 1e-6
    assert attention_kl(a_time, a_time.flip(-1), None, 0.1) > 0
    frames = valid_feature_frames(torch.tensor([1000, 500]), 10, 1000)
    assert frames.sum(1).tolist() == [10, 5]


@pytest.mark.parametrize("shape,layout", [((2, 3, 4, 9), (1, -1)), ((2, 9, 5), (2, 1))])
def test_squared_energies_match_the_generic_power_path(shape, layout):
    """p = 2 on real maps uses a fused node; it must equal |F|^p through autograd (p = 2.0001)."""
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(*shape, generator=g, dtype=torch.float64)
    frames = valid_feature_frames(torch.tensor([900, 500]), feat.shape[layout[1]], 1000)
    weights = [torch.randn(2, feat.shape[layout[1]], generator=g, dtype=torch.float64),
               torch.randn(2, feat.shape[layout[0]], generator=g, dtype=torch.float64)]
    grads = []
    for p in (2.0, 2.0 + 1e-12):  # the second is not == 2: the generic |F|^p path
        x = feat.clone().requires_grad_(True)
        a_time, a_chan = attention_energy(x, *layout, p, frames)
        ((a_time * weights[0]).sum() + (a_chan * weights[1]).sum()).backward()
        grads.append((a_time.detach(), a_chan.detach(), x.grad))
    for fused, generic in zip(*grads):  # the energies are float32 whatever the input
        torch.testing.assert_close(fused.double(), generic.double(), rtol=1e-5, atol=1e-6)
    assert grads[0][2].abs().sum() > 0


def test_atkl_requires_features_and_validates_layouts():
    module = build_kd_loss("atkl", layer_pairs=[["a", "b"], {"teacher": "c", "student": "d"}])
    assert module.feature_pairs == [("a", "b"), ("c", "d")]
    module = build_kd_loss("atkl", layer_pairs=[["a", "b"]])
    x = torch.randn(1, 800)
    with pytest.raises(ValueError, match="student_feats"):
        module(x, x, x, torch.tensor([800]))
    with pytest.raises(ValueError, match="layout"):
        build_kd_loss("atkl", layer_pairs=[["a", "b"]], layouts=[{"time": 2}])
    plain, stats = build_kd_loss("atkl")(x, x + 0.1, x, torch.tensor([800]))
    assert torch.isfinite(plain) and stats["at_time"] == 0


def build_enh_model(separator, separator_conf, encoder, encoder_conf):
    from espnet2.tasks.enh import EnhancementTask

    args = EnhancementTask.get_parser().parse_args([
        "--encoder", encoder, "--encoder_conf", encoder_conf,
        "--decoder", encoder, "--decoder_conf", encoder_conf,
        "--separator", separator, "--separator_conf", separator_conf,
    ])
    args.criterions = [{"name": "si_snr", "conf": {}, "wrapper": "fixed_order",
                        "wrapper_conf": {"weight": 1.0}}]
    return EnhancementTask.build_model(args)


PAIRS = {
    "dccrn": dict(
        teacher=("dccrn", "{num_spk: 1, rnn_layer: 1, rnn_units: 32, kernel_num: [8, 16, 16, 32]}",
                 "stft", "{n_fft: 256, hop_length: 64}"),
        student=("dccrn", "{num_spk: 1, rnn_layer: 1, rnn_units: 16, kernel_num: [4, 8, 8]}",
                 "stft", "{n_fft: 128, hop_length: 32}"),
        layer_pairs=[["separator.encoder.1", "separator.encoder.0"],
                     ["separator.encoder.3", "separator.encoder.2"],
                     ["separator.decoder.0", "separator.decoder.0"]],
    ),
    "conv_tasnet": dict(
        teacher=("tcn", "{num_spk: 1, layer: 2, stack: 1, bottleneck_dim: 16, hidden_dim: 32}",
                 "conv", "{channel: 32, kernel_size: 16, stride: 8}"),
        student=("tcn", "{num_spk: 1, layer: 2, stack: 1, bottleneck_dim: 8, hidden_dim: 16}",
                 "conv", "{channel: 16, kernel_size: 8, stride: 4}"),
        layer_pairs=[["separator.tcn.network.2.0.0", "separator.tcn.network.2.0.0"],
                     ["separator.tcn.network.2.0.1", "separator.tcn.network.2.0.1"],
                     ["encoder", "encoder"]],
    ),
}


@pytest.mark.parametrize("pair", list(PAIRS))
def test_atkl_real_models_backprop_into_student_only(pair):
    spec = PAIRS[pair]
    torch.manual_seed(0)
    teacher = build_enh_model(*spec["teacher"]).eval()
    student = build_enh_model(*spec["student"]).train()
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in teacher.parameters())
    module = build_kd_loss("atkl", layer_pairs=spec["layer_pairs"], tau=0.5, output_weight=0.1)
    teacher_tap = FeatureTap(teacher, [t for t, _ in module.feature_pairs], name="teacher")
    student_tap = FeatureTap(student, [s for _, s in module.feature_pairs], name="student")
    mix = torch.randn(2, 4000)
    ref = torch.randn(2, 4000)
    lengths = torch.tensor([4000, 3000])
    with torch.no_grad():
        t_wav = teacher.forward_enhance(mix, lengths)[0][0]
    s_wav = student.forward_enhance(mix, lengths)[0][0]
    loss, stats = module(s_wav, t_wav, ref, lengths, student_feats=student_tap.features,
                         teacher_feats=teacher_tap.features)
    assert torch.isfinite(loss) and stats["at_time"] > 0 and stats["at_channel"] > 0
    loss.backward()
    grads = [p.grad for p in student.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(torch.isfinite(g).all() for g in grads if g is not None)
    assert all(p.grad is None for p in teacher.parameters())
    # the attention part alone also reaches the student (features, not only the output term)
    student.zero_grad()
    s_wav = student.forward_enhance(mix, lengths)[0][0]
    att_only = build_kd_loss("atkl", layer_pairs=spec["layer_pairs"], output_weight=0.0)
    loss, _ = att_only(s_wav, t_wav, ref, lengths, student_feats=student_tap.features,
                       teacher_feats=teacher_tap.features)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in student.separator.parameters())
    with pytest.raises(ValueError, match="no module 'separator.encoderX' in teacher; closest: "):
        FeatureTap(teacher, ["separator.encoderX"], name="teacher")
    teacher_tap.remove()
    student_tap.remove()


def test_list_modules_prints_every_path(tmp_path, capsys):
    from helpers import tiny_tasnet_config, write_enh_model
    from dispatch.bin.list_modules import main as list_modules

    files = write_enh_model(tmp_path, tiny_tasnet_config(8, 1, 16))
    list_modules(["--config", str(files["config"]), "--grep", "separator.tcn"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "\t" in line]
    assert "separator.tcn.network.0\tChannelwiseLayerNorm\t16" in lines
    assert all(line.split("\t")[0].startswith("separator.tcn") for line in lines)
