"""End to end on CPU: stock ESPnet teacher -> KD student -> export -> stock ESPnet inference."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from helpers import (espnet_data_opts, make_student_workdir, real_pairs, run_module,
                      tiny_tasnet_config, write_data_dir)

TRAIN_OPTS = ["--ngpu", "0", "--num_workers", "0", "--max_epoch", "2", "--batch_size", "2",
              "--iterator_type", "chunk", "--chunk_length", "8000", "--num_iters_per_epoch", "3",
              "--seed", "0", "--use_tensorboard", "true",
              "--best_model_criterion", "valid,loss,min"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    make_student_workdir(work, 6, 2, seconds=1.5)
    write_data_dir(work / "data" / "test", real_pairs(2, seconds=1.5, offset=8))
    (work / "teacher.yaml").write_text(yaml.safe_dump(tiny_tasnet_config(24, 3, 48)))
    return work


def test_teacher_kd_export_inference(workdir):
    work = workdir
    # 1. a teacher trained by stock ESPnet
    run_module(["espnet2.bin.enh_train", "--config", work / "teacher.yaml",
         "--output_dir", work / "exp" / "teacher"] + TRAIN_OPTS + espnet_data_opts(work))
    teacher_dir = work / "exp" / "teacher"
    assert (teacher_dir / "valid.loss.best.pth").exists()

    # 2. a KD student from it
    proc = run_module(["dispatch.bin.enh_distill_train", "--config", work / "student.yaml",
         "--output_dir", work / "exp" / "kd", "--teacher_config", teacher_dir / "config.yaml",
         "--teacher_model_file", teacher_dir / "valid.loss.best.pth",
         "--kd_loss", "l2_mag", "--kd_weight", "0.5"] + TRAIN_OPTS + espnet_data_opts(work))
    kd_dir = work / "exp" / "kd"
    log = proc.stderr  # ESPnet logs to stderr; the recipe driver stores it as train.log
    for key in ("loss_task=", "loss_kd=", "teacher_si_snr_loss="):
        assert key in log, key
    assert list((kd_dir / "tensorboard" / "train").glob("events.*"))
    ckpt = torch.load(kd_dir / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert any(k.startswith("teacher.") for k in ckpt["model"])
    # the optimizer holds exactly the student's parameters (the teacher never enters it)
    assert len(ckpt["optimizers"][0]["param_groups"][0]["params"]) == sum(
        1 for k in ckpt["model"] if k.startswith("student.")
        and "running" not in k and "num_batches" not in k)

    # 3. export and stock ESPnet inference
    out = work / "student_export"
    run_module(["dispatch.bin.export_student", kd_dir, "--out", out])
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert "teacher_config" not in cfg and "kd_loss" not in cfg
    state = torch.load(out / "model.pth")
    assert state and not any(k.startswith(("student.", "teacher.")) for k in state)
    run_module(["espnet2.bin.enh_inference", "--train_config", out / "config.yaml", "--model_file",
         out / "model.pth", "--output_dir", work / "enhanced", "--ngpu", "0", "--fs", "16000",
         "--data_path_and_name_and_type", f"{work}/data/test/wav.scp,speech_mix,sound",
         "--normalize_output_wav", "false"])
    enhanced_scp = work / "enhanced" / "spk1.scp"
    lines = enhanced_scp.read_text().split("\n")
    entries = dict(line.split(maxsplit=1) for line in lines if line.strip())
    assert len(entries) == 2

    # ESPnet's output equals the student's own output on each file
    from espnet2.tasks.enh import EnhancementTask

    full = EnhancementTask.build_model(
        __import__("argparse").Namespace(**yaml.safe_load((kd_dir / "config.yaml").read_text())))
    source = torch.load(kd_dir / "valid.loss.best.pth", map_location="cpu")
    full.load_state_dict({k[len("student."):]: v for k, v in source.items()
                          if k.startswith("student.")})
    full.eval()
    for utt, path in entries.items():
        noisy, fs = sf.read(work / "data" / "test" / "wav" / f"{utt}_noisy.wav", dtype="float32")
        with torch.no_grad():
            own = full.forward_enhance(torch.from_numpy(noisy)[None],
                                       torch.tensor([len(noisy)]))[0][0][0].numpy()
        espnet_out, fs_out = sf.read(path.split()[-1], dtype="float32")
        assert fs_out == fs
        # wav files are written as 16-bit PCM or float; compare at the file's precision
        np.testing.assert_allclose(espnet_out, own[: len(espnet_out)], atol=2e-4)
