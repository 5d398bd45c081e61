"""The mini recipe end to end (reduced), a new recipe from setup.sh, and the driver's launch commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO

MINI = REPO / "egs" / "mini" / "enh_distill1"
SMALL = ["--local_data_opts", "--n_train 8 --n_valid 2 --n_test 3 --duration 1.5",
         "--train_args", "--max_epoch 1 --num_iters_per_epoch 2 --batch_size 2",
         "--score_opts", "--dnsmos off --no_progress", "--nj", "1"]


def sh(cmd, cwd, check=True, timeout=1200):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    if check:
        assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stderr[-5000:]}"
    return proc


def copy_of_mini(root: Path) -> Path:
    """A copy of the mini recipe made with TEMPLATE/setup.sh, outside the repository."""
    new = root / "mini_copy" / "enh_distill1"
    sh([str(REPO / "egs/TEMPLATE/enh_distill1/setup.sh"), str(new)], cwd=REPO)
    shutil.copy(MINI / "local" / "data.sh", new / "local" / "data.sh")
    shutil.copy(MINI / "run.sh", new / "run.sh")
    return new


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    return copy_of_mini(tmp_path_factory.mktemp("recipes"))


def test_setup_sh_makes_a_recipe_whose_data_step_explains_itself(tmp_path):
    new = tmp_path / "my_corpus" / "enh_distill1"
    sh([str(REPO / "egs/TEMPLATE/enh_distill1/setup.sh"), str(new)], cwd=REPO)
    for name in ("enh_distill.sh", "path.sh", "cmd.sh", "utils"):
        assert (new / name).is_symlink() and (new / name).exists(), name
    assert (new / "db.sh").is_file() and not (new / "db.sh").is_symlink()  # the recipe's own
    assert (new / "conf" / "kd" / "mssp_dfkd.yaml").is_file()
    proc = sh(["./run.sh", "--stop_stage", "1"], cwd=new, check=False)
    assert proc.returncode != 0
    assert "local/data.sh" in proc.stderr and "not written yet" in proc.stderr
    again = sh([str(REPO / "egs/TEMPLATE/enh_distill1/setup.sh"), str(new)], cwd=REPO, check=False)
    assert again.returncode != 0 and "already exists" in again.stderr


def test_mini_recipe_end_to_end(recipe):
    proc = sh(["./run.sh"] + SMALL, cwd=recipe)
    results = (recipe / "RESULTS.md").read_text()
    for row in ("noisy", "teacher", "student_nokd", "kd_l2_mag", "kd_dispatch_l2", "kd_mssp_dfkd"):
        assert row in results, row
    assert "PESQ_WB" in results or "PESQ" in results
    exp = recipe / "exp"
    for sys in ("teacher", "student_nokd", "kd_l2_mag", "kd_dispatch_l2", "kd_mssp_dfkd"):
        summary = json.loads((exp / sys / "scoring_test" / "summary.json").read_text())
        assert summary["num_scored"] == 3, sys
        assert (exp / sys / "model_stats.json").is_file()
        assert (exp / sys / "train.log").is_file()
    assert "loss_kd" in (exp / "kd_mssp_dfkd" / "train.log").read_text()
    assert list((exp / "packed").glob("kd_*.zip"))
    assert list((exp / "packed").glob("kd_*.onnx"))  # stage 10 also exports the best KD student
    assert json.loads((exp / "kd_mssp_dfkd" / "model_stats.json").read_text())["rtf_onnx_1thread"] > 0
    assert "RESULTS" in proc.stdout or "|" in proc.stdout  # the table is printed

    # a finished stage is skipped, --force re-runs it
    again = sh(["./run.sh", "--stage", "5", "--stop_stage", "5"] + SMALL, cwd=recipe)
    assert "already trained" in again.stderr


def test_clips_no_longer_than_the_chunks_stop_the_recipe_before_training(tmp_path):
    """1-s utterances and 1-s chunks: ESPnet's chunk iterator would yield nothing to train on."""
    recipe = copy_of_mini(tmp_path)
    proc = sh(["./run.sh", "--stage", "1", "--stop_stage", "4", "--local_data_opts",
               "--n_train 2 --n_valid 1 --n_test 1 --duration 1.0", "--train_args", "--max_epoch 1"],
              cwd=recipe, check=False)
    assert proc.returncode != 0
    assert "chunk_length" in proc.stderr and '--teacher_args "--chunk_length' in proc.stderr
    assert not (recipe / "exp" / "teacher" / "train.log").exists()  # stopped before training


def test_missing_data_names_the_stage(recipe, tmp_path):
    proc = sh(["./run.sh", "--stage", "2", "--stop_stage", "2", "--train_set", "nope",
               "--dumpdir", str(tmp_path / "dump")], cwd=recipe, check=False)
    assert proc.returncode != 0 and "data/nope" in proc.stderr


@pytest.mark.parametrize("ngpu,num_nodes", [(2, 1), (4, 2)])
def test_launch_commands_dry_run(recipe, ngpu, num_nodes):
    proc = sh(["./enh_distill.sh", "--dry_run", "true", "--stage", "4", "--stop_stage", "6",
               "--ngpu", str(ngpu), "--num_nodes", str(num_nodes), "--force", "true",
               "--kd_configs", "conf/kd/mssp_dfkd.yaml"], cwd=recipe)
    lines = [line for line in proc.stdout.splitlines() if "enh_distill_train" in line]
    assert len(lines) == 1
    line = lines[0]
    assert f"--ngpu {ngpu}" in line and "--multiprocessing_distributed true" in line
    assert f"--gpu {ngpu}" in line and f"--num_nodes {num_nodes}" in line
    assert "--teacher_model_file" in line and "kd_mssp_dfkd/config_in.yaml" in line
    if num_nodes > 1:
        assert "--dist_launcher slurm" in line and "--dist_init_method file://" in line
    else:
        assert "--dist_launcher" not in line


def test_teacher_cache_dry_run(recipe):
    proc = sh(["./enh_distill.sh", "--dry_run", "true", "--stage", "6", "--stop_stage", "6",
               "--teacher_cache", "true", "--force", "true",
               "--kd_configs", "conf/kd/mssp_dfkd.yaml conf/kd/atkl.yaml"], cwd=recipe)
    lines = proc.stdout.replace("\\", "").splitlines()  # the dry run prints shell-quoted words
    assert any("dispatch.bin.cache_teacher" in line for line in lines)
    train = {name: line for line in lines if "enh_distill_train" in line
             for name in ("mssp_dfkd", "atkl") if f"kd_{name}/config_in.yaml" in line}
    assert "teacher1.scp,teacher_ref1,kaldi_ark" in train["mssp_dfkd"]
    assert "teacher_ref1" not in train["atkl"]  # AT-KL needs the teacher's features
