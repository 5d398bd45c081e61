"""Deterministic distributed exit: a 2-process gloo KD training (torchrun's environment, ESPnet's
external-launcher mode) passes 20 times in a row, each rank leaving with the process group
destroyed and no writer thread left (SafeTrainer: barrier, destroy_process_group, closed
tensorboard writers). ``ddp_harness.py`` imports ESPnet once and forks the ranks, so a run costs
seconds; the ranks still exit through the normal interpreter teardown, where the
``terminate called without an active exception`` abort happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from helpers import REPO, espnet_data_opts, make_student_workdir

RUNS = 20
HARNESS = Path(__file__).with_name("ddp_harness.py")


def test_twenty_ddp_runs_in_a_row_exit_cleanly(tmp_path, teacher_files):
    work = make_student_workdir(tmp_path, 4, 2)
    logs = tmp_path / "logs"
    logs.mkdir()
    args = ["--config", work / "student.yaml", "--output_dir", tmp_path / "exp",
            "--teacher_config", teacher_files["config"],
            "--teacher_model_file", teacher_files["model_file"], "--kd_loss", "l2_mag",
            "--ngpu", "0", "--dist_backend", "gloo", "--multiprocessing_distributed", "false",
            "--dist_init_method", "env://", "--num_workers", "0", "--seed", "0",
            "--max_epoch", "1", "--num_iters_per_epoch", "1", "--batch_size", "2",
            "--iterator_type", "chunk", "--chunk_length", "4000", "--use_matplotlib", "false",
            "--use_tensorboard", "true", "--best_model_criterion", "valid,loss,min"]
    args += espnet_data_opts(work)
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, HARNESS, str(RUNS), logs, "--",
                           "dispatch.bin.enh_distill_train"] + [str(a) for a in args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(runs) == RUNS
    for run in runs:
        rank_logs = [(logs / f"run{run['run']}.rank{r}.log").read_text() for r in (0, 1)]
        assert run["exit"] == [0, 0], (run, rank_logs[0][-2000:], rank_logs[1][-2000:])
        for text in rank_logs:
            assert "terminate called" not in text
            assert "HARNESS process_group_initialized=False" in text, text[-2000:]
            assert "HARNESS threads_alive=[]" in text, text[-2000:]
        assert ":0/2]" in rank_logs[0]  # it really ran distributed
        assert (tmp_path / "exp" / f"run{run['run']}" / "1epoch.pth").is_file()
        assert list((tmp_path / "exp" / f"run{run['run']}" / "tensorboard").glob("*/events.*"))
