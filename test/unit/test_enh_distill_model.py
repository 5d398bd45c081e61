"""EnhDistillTask / ESPnetEnhDistillModel: frozen teacher, student-only optimisation, ESPnet parity."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import REPO, batch_from_pairs, full_args, real_pairs, tiny_tasnet_config, write_enh_model


def distill_args(teacher_files, kd_loss="l2_mag", kd_loss_conf=None, **overrides):
    from dispatch.tasks.enh_distill import EnhDistillTask

    config = tiny_tasnet_config()
    config.update(teacher_config=str(teacher_files["config"]),
                  teacher_model_file=str(teacher_files["model_file"]),
                  kd_loss=kd_loss, kd_loss_conf=kd_loss_conf or {}, kd_weight=1.0)
    config.update(overrides)
    return full_args(config, task=EnhDistillTask)


@pytest.fixture(scope="module")
def batch():
    return batch_from_pairs(real_pairs(3, seconds=0.5))


def build(args, seed=0):
    from dispatch.tasks.enh_distill import EnhDistillTask

    torch.manual_seed(seed)
    return EnhDistillTask.build_model(args)


def test_teacher_frozen_and_out_of_optimizer(teacher_files, batch):
    from dispatch.tasks.enh_distill import EnhDistillTask

    args = distill_args(teacher_files)
    model = build(args)
    teacher_before = copy.deepcopy(model.teacher.state_dict())
    file_state = torch.load(teacher_files["model_file"])
    optimizers = EnhDistillTask.build_optimizers(args, model)
    in_optimizer = {id(p) for opt in optimizers for g in opt.param_groups for p in g["params"]}
    assert all(id(p) not in in_optimizer for p in model.teacher.parameters())
    assert {id(p) for p in model.student.parameters()} <= in_optimizer

    student_before = copy.deepcopy(model.student.state_dict())
    for _ in range(3):
        model.train()  # ESPnet does this every epoch
        assert not model.teacher.training and model.student.training
        loss, stats, _ = model(**batch)
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in model.teacher.parameters())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())
        for opt in optimizers:
            opt.step()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
        assert torch.equal(value, file_state[key]), key
    assert any(not torch.equal(v, student_before[k]) for k, v in model.student.state_dict().items())
    for key in ("loss", "loss_task", "loss_kd", "teacher_si_snr_loss"):
        assert key in stats and torch.isfinite(stats[key]), key


def test_init_reaches_student_only(teacher_files):
    args = distill_args(teacher_files, init="xavier_uniform")
    model = build(args)
    file_state = torch.load(teacher_files["model_file"])
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, file_state[key]), key


def test_kd_none_equals_plain_espnet_model(teacher_files, batch):
    from espnet2.tasks.enh import EnhancementTask

    args = distill_args(teacher_files, kd_loss="none")
    model = build(args, seed=3)
    torch.manual_seed(3)
    plain = EnhancementTask.build_model(full_args(tiny_tasnet_config()))
    plain.load_state_dict(model.student.state_dict())
    model.train(), plain.train()
    loss, stats, weight = model(**batch)
    loss_ref, stats_ref, weight_ref = plain(**batch)
    assert torch.allclose(loss, loss_ref, atol=0, rtol=0)
    assert torch.equal(stats["si_snr_loss"], stats_ref["si_snr_loss"])
    assert int(weight) == int(weight_ref)


def test_kd_loss_uses_teacher_estimate(teacher_files, batch):
    """l2_mag KD equals the l2_mag of the student's and teacher's own enhanced outputs."""
    from dispatch.kd import build_kd_loss

    args = distill_args(teacher_files, kd_loss="l2_mag")
    model = build(args)
    model.eval()
    loss, stats, _ = model(**batch)
    mix, lengths = batch["speech_mix"], batch["speech_mix_lengths"]
    with torch.no_grad():
        s = model.student.forward_enhance(mix, lengths)[0][0]
        t = model.teacher.forward_enhance(mix, lengths)[0][0]
    expected, _ = build_kd_loss("l2_mag")(s, t, batch["speech_ref1"], lengths)
    assert torch.allclose(stats["loss_kd"], expected, rtol=1e-5)
    assert torch.allclose(stats["loss"], stats["loss_task"] + expected, rtol=1e-5)


def run_main(cmd, capsys):
    from dispatch.bin.enh_distill_train import main

    with pytest.raises(SystemExit) as exc:
        main(cmd)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2
    return err[-1]


def base_cmd(teacher_files, tmp_path, **kw):
    config = tiny_tasnet_config()
    config.update(kw)
    cfg = tmp_path / "student.yaml"
    cfg.write_text(yaml.safe_dump(config))
    return ["--config", str(cfg), "--output_dir", str(tmp_path / "exp")]


def test_error_missing_teacher_config(teacher_files, tmp_path, capsys):
    line = run_main(base_cmd(teacher_files, tmp_path) + [
        "--teacher_config", str(tmp_path / "nope.yaml"),
        "--teacher_model_file", str(teacher_files["model_file"])], capsys)
    assert "nope.yaml" in line and "does not exist" in line and "--teacher_config" in line


def test_error_teacher_model_mismatch(teacher_files, tmp_path, capsys):
    other = write_enh_model(tmp_path / "other", tiny_tasnet_config(channel=8, layer=1, hidden=8))
    line = run_main(base_cmd(teacher_files, tmp_path) + [
        "--teacher_config", str(teacher_files["config"]),
        "--teacher_model_file", str(other["model_file"])], capsys)
    assert "does not match" in line and "separator" in line and "shape mismatch" in line


def test_error_sample_rate(teacher_files, tmp_path, capsys):
    line = run_main(base_cmd(teacher_files, tmp_path, sample_rate=8000) + [
        "--teacher_config", str(teacher_files["config"]),
        "--teacher_model_file", str(teacher_files["model_file"])], capsys)
    assert "16000" in line and "8000" in line and "sample rate" in line


def test_error_unknown_kd_loss(teacher_files, tmp_path, capsys):
    line = run_main(base_cmd(teacher_files, tmp_path) + [
        "--teacher_config", str(teacher_files["config"]),
        "--teacher_model_file", str(teacher_files["model_file"]), "--kd_loss", "magic"], capsys)
    assert "magic" in line and "l2_mag" in line and "dispatch" in line


def test_error_is_one_line_without_traceback(teacher_files, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "dispatch.bin.enh_distill_train"] + base_cmd(teacher_files, tmp_path)
        + ["--teacher_config", str(teacher_files["config"]),
           "--teacher_model_file", str(teacher_files["model_file"]),
           "--kd_loss", "l2_mag", "--kd_loss_conf", "{patch_bins: 3}"],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "patch_bins" in proc.stderr.strip().splitlines()[-1]
