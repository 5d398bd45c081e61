"""tools/gpu_check.sh: the --smoke run (the GPU check's own code at a tiny size on the CPU) and the
one-line answer on a machine without a GPU."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import torch

from helpers import REPO

SCRIPT = REPO / "tools" / "gpu_check.sh"


def run_script(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_gpu_check_smoke(tmp_path):
    from dispatch.kd.stft_backend import BACKENDS
    from dispatch.perf.gpu_check import METHODS, PAIRS, PRECISIONS

    proc = run_script("--smoke", "--out_dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    table = (tmp_path / "gpu_check.txt").read_text()
    assert table.strip() in proc.stdout and "KD<=2%/cached<=1.05x" in table
    for name, *_ in PAIRS:
        for precision in ("fp32" if p is None else p for p in PRECISIONS):
            rows = [r for r in report["rows"] if r["pair"] == name and r["precision"] == precision]
            if rows and rows[0]["method"] == "all":  # a precision the model cannot run in
                assert rows[0]["goals"] == "FAILED" and rows[0]["note"]
                continue
            assert [r["method"] for r in rows] == list(METHODS)
            for r in rows:
                assert r["step_ms"] > 0
                if r["method"] not in ("none", "atkl"):  # output KD: a cached step and a share
                    assert 0 < r["step_cached_ms"] < r["step_ms"] and r["kd_share"] > 0
                    assert r["goals"].count("/") == 1
    # every pair has its fp32 rows; the Conv-TasNet pair runs under bf16 autocast too
    assert {r["pair"] for r in report["rows"] if r["precision"] == "fp32"} == {p[0] for p in PAIRS}
    assert any(r["pair"] == PAIRS[0][0] and r["precision"] == "bf16" and r["step_ms"]
               for r in report["rows"])
    stft = report["stft"]
    assert set(stft["ms"]) == set(BACKENDS) and min(stft["ms"].values()) > 0
    assert stft["chosen"] in BACKENDS
    train = report["train"]
    assert train["steps"] == 4 and "2epoch.pth" in train["checkpoints"]
    assert train["train_time_s_per_step"] > 0
    assert train["export_max_abs_diff"] < 1e-5
    assert (tmp_path / "train" / "exp" / "export" / "model.pth").is_file()
    cache_info = json.loads((tmp_path / "train" / "cache" / "cache_info.json").read_text())
    assert cache_info["dtype"] == "float16" and cache_info["utterances"] == 4


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_without_gpu_says_so_in_one_line():
    proc = run_script(timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("gpu_check")]
    assert len(lines) == 1 and "no CUDA GPU" in lines[0] and "--smoke" in lines[0]
    assert proc.stdout.strip().endswith(lines[0])  # the last thing printed
