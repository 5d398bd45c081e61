"""KD training that reads the teacher-output cache as a data stream (ESPnet chunk iterator, CPU)."""
from __future__ import annotations


from helpers import (espnet_data_opts, make_student_workdir, run_module, tiny_tasnet_config,
                      write_enh_model)


def test_kd_training_with_teacher_cache(tmp_path):
    make_student_workdir(tmp_path, 4, 2, seconds=1.5)
    teacher = write_enh_model(tmp_path / "teacher", tiny_tasnet_config(16, 2, 32), seed=1)
    run_module(["dispatch.bin.cache_teacher", "--teacher_config", teacher["config"],
         "--teacher_model_file", teacher["model_file"], "--data_dir", tmp_path / "data" / "train",
         "--out_dir", tmp_path / "cache"])
    opts = espnet_data_opts(tmp_path)
    opts += ["--train_data_path_and_name_and_type",
             f"{tmp_path}/cache/teacher1.scp,teacher_ref1,kaldi_ark"]
    proc = run_module(["dispatch.bin.enh_distill_train", "--config", tmp_path / "student.yaml",
                "--output_dir", tmp_path / "exp", "--teacher_config", teacher["config"],
                "--teacher_model_file", teacher["model_file"], "--kd_loss", "mssp",
                "--ngpu", "0", "--num_workers", "0", "--max_epoch", "1", "--batch_size", "2",
                "--iterator_type", "chunk", "--chunk_length", "8000",
                "--num_iters_per_epoch", "3", "--seed", "0",
                "--best_model_criterion", "valid,loss,min"] + opts)
    log = proc.stderr
    assert "loss_kd=" in log and "kd_frac_selected_low=" in log
    assert (tmp_path / "exp" / "1epoch.pth").exists()
