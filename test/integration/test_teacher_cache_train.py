"""KD training that reads the teacher-output cache as a data stream (ESPnet chunk iterator, CPU)."""
from __future__ import annotations

import subprocess
import sys

import yaml

from conftest import REPO, real_pairs, tiny_tasnet_config, write_data_dir, write_enh_model


def run(args):
    proc = subprocess.run([sys.executable, "-m"] + [str(a) for a in args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stderr[-4000:]}"
    return proc


def test_kd_training_with_teacher_cache(tmp_path):
    pairs = real_pairs(6, seconds=1.5)
    write_data_dir(tmp_path / "data" / "train", pairs[:4])
    write_data_dir(tmp_path / "data" / "valid", pairs[4:])
    for split in ("train", "valid"):
        run(["dispatch.bin.collect_shapes", tmp_path / "data" / split, tmp_path / "stats" / split])
    teacher = write_enh_model(tmp_path / "teacher", tiny_tasnet_config(16, 2, 32), seed=1)
    run(["dispatch.bin.cache_teacher", "--teacher_config", teacher["config"],
         "--teacher_model_file", teacher["model_file"], "--data_dir", tmp_path / "data" / "train",
         "--out_dir", tmp_path / "cache"])
    (tmp_path / "student.yaml").write_text(yaml.safe_dump(tiny_tasnet_config(8, 1, 16)))
    opts = []
    for split in ("train", "valid"):
        opts += [f"--{split}_data_path_and_name_and_type",
                 f"{tmp_path}/data/{split}/wav.scp,speech_mix,sound",
                 f"--{split}_data_path_and_name_and_type",
                 f"{tmp_path}/data/{split}/spk1.scp,speech_ref1,sound",
                 f"--{split}_shape_file", f"{tmp_path}/stats/{split}/speech_mix_shape"]
    opts += ["--train_data_path_and_name_and_type",
             f"{tmp_path}/cache/teacher1.scp,teacher_ref1,kaldi_ark"]
    proc = run(["dispatch.bin.enh_distill_train", "--config", tmp_path / "student.yaml",
                "--output_dir", tmp_path / "exp", "--teacher_config", teacher["config"],
                "--teacher_model_file", teacher["model_file"], "--kd_loss", "mssp",
                "--ngpu", "0", "--num_workers", "0", "--max_epoch", "1", "--batch_size", "2",
                "--iterator_type", "chunk", "--chunk_length", "8000",
                "--num_iters_per_epoch", "3", "--seed", "0",
                "--best_model_criterion", "valid,loss,min"] + opts)
    log = proc.stderr
    assert "loss_kd=" in log and "kd_frac_selected_low=" in log
    assert (tmp_path / "exp" / "1epoch.pth").exists()
