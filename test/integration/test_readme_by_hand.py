"""The README's "Training a KD student by hand" commands, run as written in a copy of the mini
recipe at a tiny size (a tiny corpus, an imported random teacher, one short epoch)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from helpers import REPO, tiny_tasnet_config, write_enh_model

MINI = REPO / "egs" / "mini" / "enh_distill1"
FIRST = "cd egs/mini/enh_distill1 && ./run.sh --stop_stage 4"
TINY_TRAINING = " --max_epoch 1 --num_iters_per_epoch 4 --batch_size 2"


def readme_commands():
    """The shell lines of the README's by-hand block, continuation lines joined."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Training a KD student by hand", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_readme_by_hand_commands_work_as_written(tmp_path):
    commands = readme_commands()
    assert commands[0] == FIRST  # replaced below by its tiny equivalent
    recipe = tmp_path / "mini" / "enh_distill1"
    subprocess.run([str(REPO / "egs/TEMPLATE/enh_distill1/setup.sh"), str(recipe)], check=True,
                   capture_output=True)
    shutil.copy(MINI / "local" / "data.sh", recipe / "local" / "data.sh")
    shutil.copy(MINI / "run.sh", recipe / "run.sh")
    teacher = write_enh_model(tmp_path / "teacher_src", tiny_tasnet_config(channel=16, layer=2), seed=3)
    stages = ["./run.sh", "--stop_stage", "4", "--nj", "1", "--local_data_opts",
              "--n_train 6 --n_valid 2 --n_test 2 --duration 1.5",
              "--teacher_dir", str(teacher["config"].parent)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run(stages, cwd=recipe, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    script = ["set -euo pipefail"]
    for line in commands[1:]:
        if "enh_distill_train" in line:
            script += [line + TINY_TRAINING, "echo '=== training done' >&2"]
        else:
            script.append(line)
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=recipe, capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = recipe / "exp" / "my_student"
    log = (exp / "train.log").read_text()  # run by hand, training still logs to a file
    assert "optimizer steps per epoch" in log and "loss_kd" in log
    console = proc.stderr.split("=== training done")[0]
    assert "optimizer steps per epoch" in console  # ... and to the console, without the noise
    assert "[nltk_data]" not in console and "FutureWarning" not in console
    assert "[nltk_data]" in log or "FutureWarning" in log  # which the log keeps
    assert (exp / "valid.si_snr_loss.best.pth").exists()  # the default name export_student takes
    assert (exp / "export" / "model.pth").is_file()
    assert len((exp / "enhanced" / "spk1.scp").read_text().splitlines()) == 2
