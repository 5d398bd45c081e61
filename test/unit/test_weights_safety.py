"""Model files are data, not code: a pickled payload is refused with one line and never runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from helpers import tiny_tasnet_config, write_enh_model
from dispatch.utils.weights import UnsafeWeightsError, convert_to_weights, load_weights


class Payload:
    """Unpickling this creates the file ``marker`` (what an attacker's ``os.system`` would do)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_state(path: Path, marker: Path, state: dict) -> Path:
    torch.save(dict(state, extra=Payload(marker)), path)
    return path


def test_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload_ran"
    path = evil_state(tmp_path / "evil.pth", marker, {"w": torch.ones(2)})
    with pytest.raises(UnsafeWeightsError) as err:
        load_weights(path)
    message = str(err.value)
    assert "\n" not in message and len(message.replace(str(path), "P")) < 200, message
    assert "'io.open'" in message and "dispatch.bin.convert_weights" in message
    assert not marker.exists()
    # the plain weights still load
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pth")
    assert torch.equal(load_weights(tmp_path / "ok.pth")["w"], torch.ones(2))


def test_truncated_file_is_one_line(tmp_path):
    torch.save({"w": torch.ones(1000)}, tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnsafeWeightsError) as err:
        load_weights(tmp_path / "cut.pth")
    assert "\n" not in str(err.value) and "cut.pth" in str(err.value)


def test_teacher_with_payload_is_refused_at_setup(tmp_path):
    from dispatch.models.teacher import DistillSetupError, load_teacher

    files = write_enh_model(tmp_path / "teacher", tiny_tasnet_config(8, 1, 16))
    marker = tmp_path / "payload_ran"
    evil_state(files["model_file"], marker, torch.load(files["model_file"]))
    with pytest.raises(DistillSetupError, match="refusing to load") as err:
        load_teacher(str(files["config"]), str(files["model_file"]))
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_entry_points_refuse_with_one_line(tmp_path):
    files = write_enh_model(tmp_path / "model", tiny_tasnet_config(8, 1, 16))
    marker = tmp_path / "payload_ran"
    evil_state(files["model_file"], marker, torch.load(files["model_file"]))
    from dispatch.bin.model_stats import main as model_stats_main

    with pytest.raises(SystemExit) as err:
        model_stats_main(["--config", str(files["config"]), "--model_file", str(files["model_file"]),
                          "--out", str(tmp_path / "s.json"), "--runs", "1"])
    message = str(err.value)
    assert message.startswith("model_stats: error: refusing to load") and "\n" not in message
    assert not marker.exists() and not (tmp_path / "s.json").exists()


def test_convert_weights_makes_a_trusted_file_loadable(tmp_path):
    src = tmp_path / "trusted.pth"
    torch.save({"model": {"w": torch.arange(3.0)}, "args": argparse.Namespace(a=1)}, src)
    with pytest.raises(UnsafeWeightsError):
        load_weights(src)
    convert_to_weights(src, tmp_path / "plain.pth")
    assert torch.equal(load_weights(tmp_path / "plain.pth")["w"], torch.arange(3.0))
