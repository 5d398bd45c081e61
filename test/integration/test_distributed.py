"""Distributed KD training on CPU: torchrun, 2 processes, gloo, ESPnet's external-launcher mode.

ESPnet (espnet2/train/distributed_utils.py, ``resolve_distributed_mode``): with
``--multiprocessing_distributed false`` and WORLD_SIZE > 1 in the environment (set by torchrun),
the run is distributed; RANK gives the rank and LOCAL_RANK is only required with ``--ngpu > 0``.
``--dist_init_method env://`` (the default) reads MASTER_ADDR/MASTER_PORT, also set by torchrun.
``--dist_launcher`` must stay unset (``slurm`` would require srun).

Who writes what: every rank runs the whole script, so the test wraps the entry point in an audit
hook that records, per rank, each file opened for writing, created, linked, renamed or removed
under the output dir (``torch.save`` writes from C++, so it is recorded by wrapping it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from helpers import REPO, espnet_data_opts, make_student_workdir

AUDIT_WRAPPER = textwrap.dedent('''
    """Run dispatch.bin.enh_distill_train, recording this rank's writes under OUT_DIR."""
    import os, sys
    out_dir = os.path.abspath(os.environ["AUDIT_OUT_DIR"])
    record = open(os.path.join(os.environ["AUDIT_LOG_DIR"], f"writes.rank{os.environ['RANK']}"),
                  "w", buffering=1)
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def note(event, path):
        if isinstance(path, (str, bytes, os.PathLike)):
            path = os.path.abspath(os.fsdecode(path))  # a link keeps its own name
            if path == out_dir or path.startswith(out_dir + os.sep):
                record.write(f"{event} {os.path.relpath(path, out_dir)}\\n")

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & WRITE_FLAGS:
                note("open", path)
        elif event in ("os.mkdir", "os.symlink", "os.rename", "os.remove", "os.link",
                       "os.truncate", "shutil.copyfile", "shutil.move", "os.rmdir"):
            note(event, args[1] if event in ("os.symlink", "os.link") else args[0])
            if event == "os.rename":  # os.replace too: the atomic saves rename temporaries into place
                note(event, args[1])

    import torch
    original_save = torch.save

    def save(obj, f, *a, **k):
        note("torch.save", f)
        return original_save(obj, f, *a, **k)

    torch.save = save
    sys.addaudithook(hook)
    from dispatch.bin.enh_distill_train import main
    main(sys.argv[1:])
''')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("ddp")
    make_student_workdir(work, 4, 2)
    (work / "audit_train.py").write_text(AUDIT_WRAPPER)
    return work


def test_torchrun_two_processes_gloo(work, teacher_files):
    out = work / "exp" / "kd_ddp"
    logs = work / "audit"
    logs.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
           work / "audit_train.py",
           "--config", work / "student.yaml", "--output_dir", out,
           "--teacher_config", teacher_files["config"],
           "--teacher_model_file", teacher_files["model_file"], "--kd_loss", "l2_mag",
           "--ngpu", "0", "--dist_backend", "gloo", "--multiprocessing_distributed", "false",
           "--dist_init_method", "env://", "--num_workers", "0", "--seed", "0",
           "--max_epoch", "2", "--num_iters_per_epoch", "4", "--batch_size", "4",
           "--iterator_type", "chunk", "--chunk_length", "8000", "--use_matplotlib", "false",
           "--best_model_criterion", "valid,loss,min"]
    cmd += espnet_data_opts(work)
    env = dict(os.environ, OMP_NUM_THREADS="1", AUDIT_OUT_DIR=str(out), AUDIT_LOG_DIR=str(logs),
               PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([str(c) for c in cmd], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    log = proc.stderr

    # it really ran distributed: ESPnet tags rank 0's log lines with ":0/2"
    assert ":0/2]" in log
    assert "2/2epoch started" in log
    # rank 1 logs at ERROR level only (ESPnet's main_worker): no INFO line from it
    assert not [line for line in log.splitlines() if ":1/2]" in line and " INFO: " in line]

    # rank 0 alone writes under the output dir
    rank0 = (logs / "writes.rank0").read_text().splitlines()
    rank1 = (logs / "writes.rank1").read_text().splitlines()
    assert rank1 == [], rank1
    written = {line.split(" ", 1)[1] for line in rank0}
    assert {"config.yaml", "checkpoint.pth", "1epoch.pth", "2epoch.pth", "latest.pth"} <= written

    # the checkpoint loads in single-process code
    from dispatch.tasks.enh_distill import EnhDistillTask

    import argparse

    config = yaml.safe_load((out / "config.yaml").read_text())
    model = EnhDistillTask.build_model(argparse.Namespace(**config))
    state = torch.load(out / "2epoch.pth", map_location="cpu")
    assert not any(k.startswith("module.") for k in state)  # the unwrapped model was saved
    model.load_state_dict(state, strict=True)
    ckpt = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"], strict=True)
    assert ckpt["reporter"]["epoch"] == 2
    teacher = torch.load(teacher_files["model_file"], map_location="cpu")
    for key, value in teacher.items():  # the frozen teacher came through DDP untouched
        assert torch.equal(state[f"teacher.{key}"], value), key
