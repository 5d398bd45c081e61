"""An ESPnet user's first hour with egs/custom (issue 16), replayed at a tiny size: short clips with
the paper configs' 4 s chunks, --ngpu above the GPUs present, and changed --train_args on a finished
system each stop before any training job, with one line that names the option to change."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import REPO

CUSTOM = REPO / "egs" / "custom" / "enh_distill1"
TINY = "--max_epoch 1 --num_iters_per_epoch 8"


def sh(cmd, cwd, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    return proc


def error_lines(stderr: str):
    return [line for line in stderr.splitlines() if line.startswith("preflight: error:")]


def folders(root: Path) -> dict:
    """A folder of 16 short 'speech' clips (1.2-3.2 s, like VoiceBank's) and one of noise."""
    rng = np.random.default_rng(0)
    fs = 16000
    (root / "clean").mkdir(parents=True)
    (root / "noise").mkdir()
    for i in range(16):
        t = np.arange(int((1.2 + 2.0 * i / 15) * fs)) / fs
        voiced = np.sin(2 * np.pi * (120 + 10 * i) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        sf.write(root / "clean" / f"s{i:02d}.wav", (0.2 * voiced).astype(np.float32), fs)
    for i in range(2):
        sf.write(root / "noise" / f"n{i}.wav", (0.1 * rng.standard_normal(5 * fs)).astype(np.float32), fs)
    return {"CUSTOM_CLEAN_DIR": str(root / "clean"), "CUSTOM_NOISE_DIR": str(root / "noise")}


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    """A copy of egs/custom (made with TEMPLATE/setup.sh, outside the repository) after stages 1-3."""
    root = tmp_path_factory.mktemp("first_hour")
    recipe = root / "custom" / "enh_distill1"
    proc = sh([str(REPO / "egs/TEMPLATE/enh_distill1/setup.sh"), str(recipe)], cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(recipe / "conf")
    shutil.copytree(CUSTOM / "conf", recipe / "conf")  # links followed: conf/kd links to the TEMPLATE
    for name in ("run.sh", "db.sh", "local/data.sh"):
        shutil.copy(CUSTOM / name, recipe / name)
    env = folders(root / "audio")
    proc = sh(["./run.sh", "--stop_stage", "3", "--nj", "1"], cwd=recipe, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return recipe, env


def test_short_clips_and_4s_chunks_stop_before_training(custom):
    recipe, env = custom
    proc = sh(["./run.sh", "--stage", "4"], cwd=recipe, env=env)
    assert proc.returncode != 0
    (line,) = error_lines(proc.stderr)
    assert "chunk_length" in line and '--train_args "--chunk_length' in line
    assert not (recipe / "exp" / "teacher" / "train.log").exists()


def test_more_gpus_than_present_stop_before_training(custom):
    import torch

    recipe, env = custom
    ngpu = torch.cuda.device_count() + 1  # 1 on a CPU machine
    proc = sh(["./run.sh", "--stage", "4", "--quick", "true", "--ngpu", str(ngpu)], cwd=recipe, env=env)
    assert proc.returncode != 0
    (line,) = error_lines(proc.stderr)
    assert f"--ngpu {ngpu}" in line and f"pass --ngpu {ngpu - 1}" in line
    assert not (recipe / "exp" / "teacher" / "train.log").exists()


def test_changed_train_args_on_a_finished_system_are_refused(custom):
    recipe, env = custom
    first = sh(["./run.sh", "--stage", "4", "--stop_stage", "4", "--quick", "true",
                "--train_args", TINY], cwd=recipe, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    log = recipe / "exp" / "teacher" / "train.log"
    text = log.read_text()
    assert "optimizer steps per epoch" in text and "counts in utterances, not steps" in text
    again = sh(["./run.sh", "--stage", "4", "--stop_stage", "4", "--quick", "true",
                "--train_args", "--max_epoch 2 --num_iters_per_epoch 8"], cwd=recipe, env=env)
    assert again.returncode != 0
    (line,) = error_lines(again.stderr)
    assert "'--max_epoch 1' -> '--max_epoch 2'" in line and "--tag" in line and "--force true" in line
    assert log.read_text() == text  # nothing trained
    tagged = sh(["./run.sh", "--stage", "4", "--stop_stage", "4", "--quick", "true", "--dry_run", "true",
                 "--train_args", "--max_epoch 2", "--tag", "longer"], cwd=recipe, env=env)
    assert tagged.returncode == 0 and "exp/longer/teacher" in tagged.stdout
