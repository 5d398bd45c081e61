"""plot_patches: the drawing function on random maps and the CLI on tiny ESPnet models."""
import numpy as np
import pytest
import torch
import yaml

from dispatch.bin import plot_patches
from dispatch.results import patch_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_draw_patch_figure_random_maps(tmp_path):
    rng = np.random.default_rng(0)
    kgs = rng.standard_normal((257, 20))
    kgs[100:] = np.nan
    maps = {"low": {"kgs": kgs, "mask": kgs > 0}, "high": {"kgs": -kgs, "mask": kgs < 0}}
    out = tmp_path / "sub" / "fig.png"
    patch_figure.draw_patch_figure(rng.standard_normal((257, 20)), maps, str(out), 16000, 128)
    assert out.read_bytes()[:8] == PNG_MAGIC


def tiny_tcn_model(out_dir, hidden):
    """Write config.yaml + model.pth of a tiny Conv-TasNet made by EnhancementTask.build_model."""
    from espnet2.tasks.enh import EnhancementTask

    args = EnhancementTask.get_parser().parse_args([
        "--output_dir", str(out_dir),
        "--encoder", "conv", "--encoder_conf", "{channel: 16, kernel_size: 16, stride: 8}",
        "--decoder", "conv", "--decoder_conf", "{channel: 16, kernel_size: 16, stride: 8}",
        "--separator", "tcn",
        "--separator_conf", f"{{num_spk: 1, layer: 2, stack: 1, bottleneck_dim: 8, hidden_dim: {hidden}}}",
    ])
    args.criterions = [{"name": "si_snr", "conf": {}, "wrapper": "fixed_order",
                        "wrapper_conf": {"weight": 1.0}}]
    torch.manual_seed(hidden)
    model = EnhancementTask.build_model(args)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    torch.save(model.state_dict(), out_dir / "model.pth")
    return str(out_dir / "config.yaml"), str(out_dir / "model.pth")


@pytest.mark.parametrize("kd_loss,conf", [("dispatch", "{k: 0.5, patch_bins: 16}"),
                                          ("mssp", "conf_file")])
def test_cli_writes_png(tmp_path, kd_loss, conf):
    soundfile = pytest.importorskip("soundfile")
    t_conf, t_pth = tiny_tcn_model(tmp_path / "teacher", 32)
    s_conf, s_pth = tiny_tcn_model(tmp_path / "student", 16)
    rng = np.random.default_rng(1)
    clean = (0.3 * np.sin(np.arange(8000) * 0.05) + 0.05 * rng.standard_normal(8000)).astype("float32")
    noisy = clean + 0.1 * rng.standard_normal(8000).astype("float32")
    soundfile.write(tmp_path / "clean.wav", clean, 16000)
    soundfile.write(tmp_path / "noisy.wav", noisy, 16000)
    if conf == "conf_file":
        (tmp_path / "kd.yaml").write_text("split: fixed\nsplit_hz: 3000\nbase: l2_mag\n")
        conf = str(tmp_path / "kd.yaml")
    out = tmp_path / "patches.png"
    plot_patches.main([
        "--teacher_config", t_conf, "--teacher_model_file", t_pth,
        "--student_config", s_conf, "--student_model_file", s_pth,
        "--noisy", str(tmp_path / "noisy.wav"), "--clean", str(tmp_path / "clean.wav"),
        "--kd_loss", kd_loss, "--kd_loss_conf", conf, "--out", str(out),
    ])
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_bad_conf_key_fails_before_loading(tmp_path):
    with pytest.raises(ValueError, match="patch_binz"):
        plot_patches.main(["--teacher_config", "x", "--teacher_model_file", "x",
                           "--student_config", "x", "--student_model_file", "x",
                           "--noisy", "x", "--clean", "x", "--kd_loss", "dispatch",
                           "--kd_loss_conf", "{patch_binz: 3}", "--out", str(tmp_path / "o.png")])
