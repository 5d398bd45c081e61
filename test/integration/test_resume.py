"""Interruption: a KD run killed with SIGKILL and restarted with ``--resume true`` ends where an
uninterrupted run with the same seed ends.

Why the two runs agree exactly on CPU (the test still allows a tiny tolerance):

- ESPnet's ``checkpoint.pth`` holds the model (student and teacher), the optimizer, the schedulers
  and the reporter; ``--resume true`` reloads all of them and restarts at the next epoch.
- ESPnet reseeds ``random``, numpy and torch with ``seed + epoch`` at the start of every epoch, and
  the batch order and chunk positions are drawn from ``RandomState(seed + epoch)``, so an epoch
  does not depend on the RNG state left by earlier epochs (with ``--num_workers 0``).
- The teacher runs in eval mode under ``no_grad``, so it draws no random numbers (no dropout).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import REPO, espnet_data_opts, make_student_workdir

MAX_EPOCH = 3
TOLERANCE = 1e-6  # absolute, per weight; observed difference: 0.0 (bit-exact)


@pytest.fixture(scope="module")
def work(tmp_path_factory, teacher_files):
    work = tmp_path_factory.mktemp("resume")
    make_student_workdir(work, 4, 2)
    return work


def train_cmd(work: Path, teacher_files, out: Path) -> list:
    cmd = [sys.executable, "-m", "dispatch.bin.enh_distill_train", "--config", work / "student.yaml",
           "--output_dir", out, "--teacher_config", teacher_files["config"],
           "--teacher_model_file", teacher_files["model_file"], "--kd_loss", "l2_mag",
           "--kd_weight", "0.5", "--ngpu", "0", "--num_workers", "0", "--seed", "7",
           "--max_epoch", str(MAX_EPOCH), "--num_iters_per_epoch", "3", "--batch_size", "2",
           "--iterator_type", "chunk", "--chunk_length", "8000", "--resume", "true",
           "--best_model_criterion", "valid,loss,min", "--keep_nbest_models", "5",
           "--use_tensorboard", "false", "--use_matplotlib", "false"]
    cmd += espnet_data_opts(work)
    return [str(c) for c in cmd]


def run_to_end(cmd: list) -> str:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stderr


def student_state(path: Path) -> dict:
    state = torch.load(path, map_location="cpu")
    return {k: v for k, v in state.items() if k.startswith("student.")}


def test_sigkill_then_resume_matches_uninterrupted(work, teacher_files):
    reference = work / "exp" / "reference"
    run_to_end(train_cmd(work, teacher_files, reference))

    killed = work / "exp" / "killed"
    cmd = train_cmd(work, teacher_files, killed)
    with open(work / "killed_first.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        # ESPnet writes checkpoint.pth, then 1epoch.pth, then the latest.pth link: once the link
        # exists both files are complete, and epoch 2 is about to start.
        deadline = time.monotonic() + 300
        while not (killed / "latest.pth").is_symlink():
            assert proc.poll() is None, (work / "killed_first.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (killed / f"{MAX_EPOCH}epoch.pth").exists()
    epoch_at_kill = torch.load(killed / "checkpoint.pth", map_location="cpu",
                               weights_only=False)["reporter"]["epoch"]
    assert 1 <= epoch_at_kill < MAX_EPOCH

    log = run_to_end(cmd)  # the same command again
    assert "The training was resumed using" in log
    assert f"{epoch_at_kill + 1}/{MAX_EPOCH}epoch started" in log
    assert f"1/{MAX_EPOCH}epoch started" not in log

    ours = student_state(killed / f"{MAX_EPOCH}epoch.pth")
    ref = student_state(reference / f"{MAX_EPOCH}epoch.pth")
    assert ours.keys() == ref.keys() and ours
    worst = max((ours[k].float() - ref[k].float()).abs().max().item() for k in ref)
    assert worst <= TOLERANCE, f"largest weight difference {worst}"
    # the run actually trained: the final student differs from the first epoch's
    first = student_state(reference / "1epoch.pth") if (reference / "1epoch.pth").exists() else None
    if first is not None:
        assert any(not torch.equal(first[k], ref[k]) for k in ref)
