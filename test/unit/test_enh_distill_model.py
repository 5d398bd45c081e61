"""EnhDistillTask / ESPnetEnhDistillModel: frozen teacher, student-only optimisation, ESPnet parity."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import yaml

from helpers import REPO, batch_from_pairs, full_args, real_pairs, tiny_tasnet_config, write_enh_model


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


# --- issue 8: AT-KL layer paths at start-up; finite KD losses; NaN teacher; one bad batch -------

@pytest.fixture(scope="module")
def short_batch():
    return batch_from_pairs(real_pairs(2, seconds=0.25))


ATKL_PAIRS = [["separator.tcn.network.0", "separator.tcn.network.0"], ["encoder", "encoder"]]


@pytest.mark.parametrize("pair, side", [(["separator.tcn.5", "encoder"], "teacher"),
                                        (["encoder", "separator.nope"], "student")])
def test_error_atkl_layer_path(teacher_files, tmp_path, capsys, pair, side):
    line = run_main(base_cmd(teacher_files, tmp_path) + [
        "--teacher_config", str(teacher_files["config"]),
        "--teacher_model_file", str(teacher_files["model_file"]), "--kd_loss", "atkl",
        "--kd_loss_conf", f"{{layer_pairs: [[{pair[0]}, {pair[1]}]]}}"], capsys)
    bad = pair[0] if side == "teacher" else pair[1]
    assert line.startswith(f"enh_distill_train: error: no module '{bad}' in {side}; closest: ")
    assert "separator.tcn.network.0" in line and "\n" not in line  # nearest names come first
    assert "dispatch.bin.list_modules" in line and len(line) < 300
    assert not (tmp_path / "exp").exists()  # stopped before ESPnet wrote anything


def test_error_atkl_layer_that_never_runs(teacher_files, tmp_path, capsys):
    """ESPnet's TCN iterates over the children of network.2: a hook on it never fires."""
    line = run_main(base_cmd(teacher_files, tmp_path) + [
        "--teacher_config", str(teacher_files["config"]),
        "--teacher_model_file", str(teacher_files["model_file"]), "--kd_loss", "atkl",
        "--kd_loss_conf", "{layer_pairs: [[separator.tcn.network.2, separator.tcn.network.0]]}"],
        capsys)
    assert "layer_pairs" in line and "separator.tcn.network.2" in line and "never called" in line
    assert not (tmp_path / "exp").exists()


KD_METHODS = {"l2_mag": {}, "sisnr": {}, "dfkd": {}, "dispatch": {}, "mssp": {},
              "atkl": {"layer_pairs": ATKL_PAIRS}}


@pytest.mark.parametrize("kd_loss", list(KD_METHODS))
def test_kd_finite_on_silence_and_zero_teacher(teacher_files, short_batch, kd_loss):
    batch = short_batch
    model = build(distill_args(teacher_files, kd_loss=kd_loss, kd_loss_conf=KD_METHODS[kd_loss],
                               kd_grad_ratio_interval=1))  # every step: kd_grad_ratio is finite too
    silent = dict(batch, speech_mix=torch.zeros_like(batch["speech_mix"]),
                  speech_ref1=torch.zeros_like(batch["speech_ref1"]))
    for case in ("silent utterances", "all-zero teacher output"):
        if case == "all-zero teacher output":
            for p in model.teacher.parameters():
                p.data.zero_()
            with torch.no_grad():
                teacher_wav, _ = model.teacher_forward(batch["speech_mix"],
                                                       batch["speech_mix_lengths"],
                                                       speech_ref1=batch["speech_ref1"])
            assert teacher_wav.abs().max() == 0
        model.train()
        model.zero_grad()
        loss, stats, _ = model(**(silent if case == "silent utterances" else batch))
        assert torch.isfinite(stats["loss_kd"]) and torch.isfinite(loss), (case, stats)
        assert stats["kd_skipped"] == 0
        assert all(torch.isfinite(v) for k, v in stats.items() if k.startswith("kd_")), case
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.student.parameters()
                   if p.grad is not None), case


@pytest.mark.parametrize("kd_loss", ["l2_mag", "atkl"])
def test_nan_teacher_drops_kd_term_only(teacher_files, short_batch, kd_loss, monkeypatch, caplog):
    """The batch keeps its task loss, the KD term is dropped, the skip is counted, keys are stable."""
    batch = short_batch
    from dispatch.tasks.enh_distill import EnhDistillTask

    args = distill_args(teacher_files, kd_loss=kd_loss, kd_loss_conf=KD_METHODS[kd_loss])
    model = build(args)
    model.train()
    good_loss, good_stats, _ = model(**batch)

    original = model.teacher_forward

    def nan_teacher(*a, **k):
        wav, stats = original(*a, **k)
        return torch.full_like(wav, float("nan")), stats

    monkeypatch.setattr(model, "teacher_forward", nan_teacher)
    optimizers = EnhDistillTask.build_optimizers(args, model)
    before = copy.deepcopy(model.student.state_dict())
    with caplog.at_level("WARNING"):
        loss, stats, _ = model(**batch)
    assert "non-finite teacher output" in caplog.text
    assert torch.isfinite(loss) and torch.equal(loss, stats["loss_task"])
    assert torch.allclose(stats["loss_task"], good_stats["loss_task"])  # same student, same batch
    assert stats["kd_skipped"] == 1 and good_stats["kd_skipped"] == 0
    # the same stat keys as a normal batch (DDP all-reduces stats key by key); KD values are NaN,
    # which ESPnet's reporter leaves out of the epoch means
    assert stats.keys() == good_stats.keys()
    assert torch.isnan(stats["loss_kd"]) and all(
        torch.isnan(v) for k, v in stats.items() if k.startswith("kd_") and k != "kd_skipped")
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.student.parameters()
               if p.grad is not None)
    for opt in optimizers:
        opt.step()
    after = model.student.state_dict()
    assert any(not torch.equal(after[k], before[k]) for k in before)  # the step still trained


def test_one_bad_batch_through_espnet_trainer(teacher_files, short_batch, caplog):
    """ESPnet's train_one_epoch with a NaN batch between good ones: no crash, no NaN weights.

    A NaN input makes the student's loss NaN; ESPnet's trainer sees a non-finite grad norm and
    skips that update ("The grad norm is nan. Skipping updating the model.").
    """
    from espnet2.train.distributed_utils import DistributedOption
    from espnet2.train.reporter import Reporter
    from espnet2.train.trainer import Trainer

    from dispatch.tasks.enh_distill import EnhDistillTask

    batch = short_batch
    args = distill_args(teacher_files, kd_loss="l2_mag", log_interval=1)
    model = build(args)
    optimizers = EnhDistillTask.build_optimizers(args, model)
    bad = dict(batch, speech_mix=batch["speech_mix"].clone())
    bad["speech_mix"][0, 100:200] = float("nan")
    ids = [f"utt{i}" for i in range(len(batch["speech_mix"]))]
    iterator = [(ids, dict(batch)), (ids, bad), (ids, dict(batch))]
    reporter = Reporter()
    reporter.set_epoch(1)
    with caplog.at_level("WARNING"), reporter.observe("train") as sub:
        all_invalid = Trainer.train_one_epoch(
            model=model, iterator=iterator, optimizers=optimizers, schedulers=[None],
            scaler=None, reporter=sub, summary_writer=None,
            options=Trainer.build_options(args), distributed_option=DistributedOption())
    assert not all_invalid
    assert "Skipping updating the model" in caplog.text
    assert all(torch.isfinite(p).all() for p in model.student.parameters())
    assert reporter.get_value("train", "loss") == reporter.get_value("train", "loss")  # not NaN


def test_kd_grad_ratio_is_measured_every_n_steps_and_matches_autograd(teacher_files, batch):
    args = distill_args(teacher_files, kd_loss="l2_mag", kd_weight=3.0, kd_grad_ratio_interval=2)
    model = build(args)
    model.train()
    ratios = [model(**batch)[1]["kd_grad_ratio"] for _ in range(3)]
    assert torch.isfinite(ratios[0]) and ratios[0] > 0
    assert torch.isnan(ratios[1]) and torch.isfinite(ratios[2])
    # the same ratio by hand: the task gradient from a kd_weight 0 twin, the KD part by difference
    # (in float64: on real speech the KD part is ~1e-5 of the task gradient, below float32's
    # cancellation error of the difference)
    model.double()
    batch = {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}
    params = [p for p in model.student.parameters() if p.requires_grad]
    model._train_steps = 0
    loss, stats, _ = model(**batch)
    g_all = torch.autograd.grad(loss, params)
    model.kd_weight = 0.0
    g_task = torch.autograd.grad(model(**batch)[0], params)
    norm_task = torch.sqrt(sum(g.pow(2).sum() for g in g_task))
    norm_kd = torch.sqrt(sum((a - b).pow(2).sum() for a, b in zip(g_all, g_task)))
    assert stats["kd_grad_ratio"].item() == pytest.approx((norm_kd / norm_task).item(), rel=1e-3)
    model.kd_weight = 3.0
    model.eval()
    with torch.no_grad():
        assert torch.isnan(model(**batch)[1]["kd_grad_ratio"])
