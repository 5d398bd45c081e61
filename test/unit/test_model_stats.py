"""dispatch.bin.model_stats: parameter count, MACs per second (RNNs included), single-thread RTF."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dispatch.bin.model_stats import main
from dispatch.deploy.stats import count_macs_g_per_s, model_stats


class FramedLstm(torch.nn.Module):
    """x: [1, L] -> frames [1, T, 160] -> Linear(160, 80) -> LSTM(80, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(160, 80)
        self.rnn = torch.nn.LSTM(80, 32, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.reshape(1, -1, 160)  # [1, T, 160]
        return self.rnn(self.proj(frames))[0]


def test_macs_count_linear_and_lstm() -> None:
    model = FramedLstm()
    fs, seconds = 16000, 1.0
    frames = int(fs * seconds) // 160
    expected = frames * (160 * 80 + 4 * 32 * (80 + 32)) / seconds / 1e9
    assert count_macs_g_per_s(model, fs, seconds) == pytest.approx(expected, rel=1e-6)
    stats = model_stats(model, fs, seconds, runs=2)
    n_params = sum(p.numel() for p in model.parameters())
    assert stats["params_M"] == pytest.approx(n_params / 1e6)
    assert 0.0 < stats["rtf_cpu_1thread"] < 1.0
    assert torch.get_num_threads() >= 1


def test_cli_on_a_tiny_espnet_conv_tasnet(tmp_path: Path) -> None:
    pytest.importorskip("espnet2.tasks.enh")
    config = tmp_path / "config.yaml"
    config.write_text(
        "encoder: conv\nencoder_conf: {channel: 16, kernel_size: 16, stride: 8}\n"
        "separator: tcn\nseparator_conf: {num_spk: 1, layer: 2, stack: 1, bottleneck_dim: 16,"
        " hidden_dim: 32, kernel: 3, nonlinear: relu}\n"
        "decoder: conv\ndecoder_conf: {channel: 16, kernel_size: 16, stride: 8}\n"
        "model_conf: {}\ninit: null\n"
    )
    out = tmp_path / "model_stats.json"
    main(["--config", str(config), "--out", str(out), "--seconds", "0.5", "--runs", "2"])
    stats = json.loads(out.read_text())
    assert 0.001 < stats["params_M"] < 0.01
    assert stats["macs_G_per_s"] > 0.0
    assert stats["rtf_cpu_1thread"] > 0.0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
