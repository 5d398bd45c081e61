"""End to end on CPU: a tiny Uformer teacher trained with ``dispatch.bin.enh_train``, then AT-KL
distillation (encoder i <-> encoder i, decoder i <-> decoder i) into a tiny 6+6-layer DCCRN
student with a different STFT hop, through ``dispatch.bin.enh_distill_train``."""

from __future__ import annotations

import torch
import yaml

from helpers import espnet_data_opts, make_student_workdir, run_module

SI_SNR = [{"name": "si_snr", "conf": {"eps": 1.0e-7}, "wrapper": "fixed_order",
           "wrapper_conf": {"weight": 1.0}}]
TRAIN_OPTS = ["--ngpu", "0", "--num_workers", "0", "--max_epoch", "1", "--batch_size", "2",
              "--iterator_type", "chunk", "--chunk_length", "8000", "--num_iters_per_epoch", "2",
              "--seed", "0", "--use_tensorboard", "false",
              "--best_model_criterion", "valid,loss,min"]


def stft(n_fft: int, hop: int, encoder: bool) -> dict:
    conf = {"n_fft": n_fft, "win_length": n_fft, "hop_length": hop}
    return dict(conf, use_builtin_complex=True) if encoder else conf


def teacher_config() -> dict:
    """A tiny Uformer at hop 64 (the student uses hop 32)."""
    return {"encoder": "stft", "encoder_conf": stft(128, 64, True),
            "separator": "uformer",
            "separator_conf": {"channels": [4, 4, 8, 8, 8, 8], "attention_heads": 2,
                               "ff_hidden": 16, "num_dilated": 2},
            "decoder": "stft", "decoder_conf": stft(128, 64, False),
            "criterions": SI_SNR, "sample_rate": 16000, "init": None}


def student_config() -> dict:
    pairs = ([[f"separator.encoder.{i}"] * 2 for i in range(6)]
             + [[f"separator.decoder.{i}"] * 2 for i in range(6)])
    return {"encoder": "stft", "encoder_conf": stft(128, 32, True),
            "separator": "dccrn",
            "separator_conf": {"kernel_num": [4, 4, 8, 8, 8, 8], "rnn_units": 16},
            "decoder": "stft", "decoder_conf": stft(128, 32, False),
            "criterions": SI_SNR, "sample_rate": 16000, "init": None,
            "kd_loss": "atkl", "kd_loss_conf": {"layer_pairs": pairs}, "kd_weight": 1.0}


def test_uformer_teacher_then_atkl_student(tmp_path):
    work = tmp_path
    make_student_workdir(work, 4, 2, student_config=student_config())
    (work / "teacher.yaml").write_text(yaml.safe_dump(teacher_config()))

    # 1. the Uformer teacher, trained by ESPnet's enh_train with the toolkit's separators
    teacher_dir = work / "exp" / "teacher"
    run_module(["dispatch.bin.enh_train", "--config", work / "teacher.yaml", "--output_dir",
         teacher_dir] + TRAIN_OPTS + espnet_data_opts(work))
    assert yaml.safe_load((teacher_dir / "config.yaml").read_text())["separator"] == "uformer"
    assert (teacher_dir / "valid.loss.best.pth").exists()

    # 2. AT-KL distillation into a DCCRN student
    kd_dir = work / "exp" / "kd_atkl"
    proc = run_module(["dispatch.bin.enh_distill_train", "--config", work / "student.yaml",
                "--output_dir", kd_dir, "--teacher_config", teacher_dir / "config.yaml",
                "--teacher_model_file", teacher_dir / "valid.loss.best.pth"]
               + TRAIN_OPTS + espnet_data_opts(work))
    log = proc.stderr  # ESPnet logs to stderr
    for key in ("loss_task=", "loss_kd=", "kd_at_time=", "kd_at_channel=", "teacher_si_snr_loss="):
        assert key in log, key
    ckpt = torch.load(kd_dir / "checkpoint.pth", map_location="cpu", weights_only=False)
    teacher_keys = [k for k in ckpt["model"] if k.startswith("teacher.separator.conformer")]
    assert teacher_keys  # the Uformer teacher was loaded into the distillation model
    teacher_state = torch.load(teacher_dir / "valid.loss.best.pth", map_location="cpu")
    for key in teacher_keys:
        assert torch.equal(ckpt["model"][key], teacher_state[key[len("teacher."):]]), key
