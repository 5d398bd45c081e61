"""Tests of the shell helpers in utils/: parse_options.sh, run.sh (local and slurm dry run), the scp
helpers and validate_data_dir.sh."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UTILS = REPO / "utils"


def sh(args: list[str] | str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    """Run a command (list, or a bash string) with the test's Python first on PATH."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    cmd = ["bash", "-c", args] if isinstance(args, str) else args
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def opt_script(tmp_path: Path) -> Path:
    """A script that declares options, sources parse_options.sh and prints the result."""
    script = tmp_path / "demo.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "set -euo pipefail\n"
        "stage=1            # first stage\n"
        "train_set=train    # training data dir\n"
        "use_gpu=false      # boolean option\n"
        "empty=\n"
        'help_message="Usage: demo.sh [options] <dir>"\n'
        "helper() {\n"
        "    inner=1\n"
        "}\n"
        f". {UTILS}/parse_options.sh\n"
        "late=1\n"
        'echo "stage=${stage} train_set=${train_set} use_gpu=${use_gpu} empty=${empty} rest=$*"\n'
    )
    return script


def test_parse_options_sets_known(opt_script: Path) -> None:
    r = sh(["bash", str(opt_script), "--stage", "3", "--train-set=tr x", "--use_gpu", "true", "pos1", "--x"],
           opt_script.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=3 train_set=tr x use_gpu=true empty= rest=pos1 --x"


def test_parse_options_defaults_and_double_dash(opt_script: Path) -> None:
    r = sh(["bash", str(opt_script), "--empty=v", "--", "--stage"], opt_script.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "stage=1 train_set=train use_gpu=false empty=v rest=--stage"


@pytest.mark.parametrize("bad", ["--nope", "--inner", "--late", "--help_message", "--PATH"])
def test_parse_options_unknown_lists_known(opt_script: Path, bad: str) -> None:
    r = sh(["bash", str(opt_script), bad, "1"], opt_script.parent)
    assert r.returncode == 1
    assert f"unknown option {bad}" in r.stderr
    assert "--stage --train_set --use_gpu --empty" in r.stderr
    assert r.stdout == ""


def test_parse_options_bad_boolean_and_missing_value(opt_script: Path) -> None:
    r = sh(["bash", str(opt_script), "--use_gpu", "yes"], opt_script.parent)
    assert r.returncode == 1 and "takes true or false" in r.stderr
    r = sh(["bash", str(opt_script), "--stage"], opt_script.parent)
    assert r.returncode == 1 and "needs a value" in r.stderr


def test_parse_options_help(opt_script: Path) -> None:
    r = sh(["bash", str(opt_script), "--stage", "7", "--help"], opt_script.parent)
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: demo.sh [options] <dir>")
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.strip().startswith("--")}
    assert list(lines) == ["--stage", "--train_set", "--use_gpu", "--empty"]
    assert "[7]" in lines["--stage"] and "first stage" in lines["--stage"]
    assert "[train]" in lines["--train_set"]


def test_parse_options_explicit_known_options(tmp_path: Path) -> None:
    script = tmp_path / "k.sh"
    script.write_text(f'set -euo pipefail\na=1\nb=2\nknown_options="b"\n. {UTILS}/parse_options.sh\necho "$a $b"\n')
    assert sh(["bash", str(script), "--b", "5"], tmp_path).stdout.strip() == "1 5"
    r = sh(["bash", str(script), "--a", "5"], tmp_path)
    assert r.returncode == 1 and "known options: --b" in r.stderr


def test_run_local_jobs(tmp_path: Path) -> None:
    r = sh([str(UTILS / "run.sh"), "--backend", "local", "JOB=1:3", "exp/log/x.JOB.log",
            "echo", "job JOB of 3", "arg with space"], tmp_path)
    assert r.returncode == 0, r.stderr
    for i in (1, 2, 3):
        log = (tmp_path / f"exp/log/x.{i}.log").read_text()
        assert f"job {i} of 3 arg with space" in log and "# Ended (code 0)" in log


def test_run_local_failing_job_names_log(tmp_path: Path) -> None:
    r = sh([str(UTILS / "run.sh"), "--max_jobs_run", "2", "JOB=1:3", "log/y.JOB.log",
            "test JOB -ne 2 && echo fine"], tmp_path)
    assert r.returncode == 1
    assert "1 of 3 jobs failed" in r.stderr and "log/y.2.log" in r.stderr and "log/y.1.log" not in r.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/y.2.log").read_text()
    assert "fine" in (tmp_path / "log/y.3.log").read_text()


def test_run_single_job_pipeline(tmp_path: Path) -> None:
    r = sh([str(UTILS / "run.sh"), "one.log", "echo abc | tr a z"], tmp_path)
    assert r.returncode == 0 and "zbc" in (tmp_path / "one.log").read_text()


def test_run_slurm_dry_run(tmp_path: Path) -> None:
    r = sh([str(UTILS / "run.sh"), "--backend", "slurm", "--gpu", "2", "--mem", "16G", "--num_nodes", "2",
            "--partition", "gpu", "--dry_run", "true", "JOB=1:4", "exp/log/train.JOB.log",
            "python3", "-m", "espnet2.bin.launch", "--job", "JOB"], tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "sbatch --wait" in out and "--array=1-4" in out and "--gres=gpu:2" in out
    assert "--mem=16G" in out and "--nodes=2" in out and "--partition=gpu" in out
    assert "--output=exp/log/train.%a.log" in out
    assert "srun --nodes=2 --ntasks-per-node=1 bash -c" in out and "SLURM_ARRAY_TASK_ID" in out
    assert not (tmp_path / "exp").exists()  # a dry run writes nothing


def test_run_bad_usage(tmp_path: Path) -> None:
    assert "unknown backend" in sh([str(UTILS / "run.sh"), "--backend", "pbs", "a.log", "true"], tmp_path).stderr
    assert "bad job range" in sh([str(UTILS / "run.sh"), "JOB=3:1", "a.log", "true"], tmp_path).stderr
    r = sh([str(UTILS / "run.sh"), "--help"], tmp_path)
    assert r.returncode == 0 and "--backend" in r.stdout and "--dry_run" in r.stdout


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{ln}\n" for ln in lines))
    return path


def test_split_filter_check_sorted(tmp_path: Path) -> None:
    scp = _write(tmp_path / "wav.scp", [f"u{i} /a/{i}.wav" for i in range(7)])
    r = sh([str(UTILS / "split_scp.sh"), str(scp)] + [str(tmp_path / f"p{j}.scp") for j in (1, 2, 3)], tmp_path)
    assert r.returncode == 0, r.stderr
    parts = [(tmp_path / f"p{j}.scp").read_text().split("\n")[:-1] for j in (1, 2, 3)]
    assert [len(p) for p in parts] == [3, 2, 2] and sum(parts, []) == scp.read_text().split("\n")[:-1]
    r = sh([str(UTILS / "split_scp.sh"), str(scp)] + [str(tmp_path / f"q{j}") for j in range(9)], tmp_path)
    assert r.returncode == 1 and "at most 7 jobs" in r.stderr

    ids = _write(tmp_path / "ids", ["u5", "u1 extra-field", "zz"])
    r = sh([str(UTILS / "filter_scp.sh"), str(ids), str(scp)], tmp_path)
    assert r.stdout == "u1 /a/1.wav\nu5 /a/5.wav\n"
    r = sh([str(UTILS / "filter_scp.sh"), "--exclude", str(ids), str(scp)], tmp_path)
    assert r.stdout.count("\n") == 5 and "u1 " not in r.stdout

    assert sh([str(UTILS / "check_sorted.sh"), str(scp)], tmp_path).returncode == 0
    bad = _write(tmp_path / "bad.scp", ["b 1", "a 2", "c 3", "c 4"])
    r = sh([str(UTILS / "check_sorted.sh"), str(bad)], tmp_path)
    assert r.returncode == 1 and "not sorted at entry 2" in r.stderr and "duplicate id 'c'" in r.stderr
    # LC_ALL=C order: upper case before lower case, '_' after digits
    ok = _write(tmp_path / "c.scp", ["B x", "a x", "a1 x", "a_ x"])
    assert sh([str(UTILS / "check_sorted.sh"), str(ok)], tmp_path).returncode == 0
    assert sh(f"LC_ALL=C sort -c {ok}", tmp_path).returncode == 0


def test_validate_data_dir_reports_everything(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    good = tmp_path / "good"
    _write(good / "wav.scp", [f"s1_u1 {wav}", f"s1_u2 {wav}"])
    _write(good / "spk1.scp", [f"s1_u1 {wav}", f"s1_u2 {wav}"])
    _write(good / "utt2spk", ["s1_u1 s1", "s1_u2 s1"])
    _write(good / "spk2utt", ["s1 s1_u1 s1_u2"])
    r = sh([str(UTILS / "validate_data_dir.sh"), str(good)], tmp_path)
    assert r.returncode == 0, r.stderr

    bad = tmp_path / "bad"
    _write(bad / "wav.scp", [f"u2 {wav}", f"u1 {wav}", f"u1 {wav}", f"u3 {wav}"])   # unsorted + duplicate
    _write(bad / "spk1.scp", [f"u1 {wav}", f"u2 /missing.wav", f"u4 {wav}"])       # missing file, id mismatch
    _write(bad / "utt2spk", ["u1 s", "u2 s", "u3 s"])
    _write(bad / "spk2utt", ["s u1 u2"])                                            # stale spk2utt
    r = sh([str(UTILS / "validate_data_dir.sh"), str(bad)], tmp_path)
    assert r.returncode == 1
    err = r.stderr
    for expected in ("wav.scp: not sorted", "duplicate id 'u1'", "ids in wav.scp are missing from spk1.scp: u3",
                     "ids in spk1.scp are missing from wav.scp: u4", "spk2utt does not match utt2spk",
                     "spk1.scp: 1 audio files not found", "problem(s) found"):
        assert expected in err, (expected, err)

    r = sh([str(UTILS / "validate_data_dir.sh"), str(tmp_path / "nowhere")], tmp_path)
    assert r.returncode == 1 and "not a directory" in r.stderr
    (good / "spk2utt").unlink()
    r = sh([str(UTILS / "validate_data_dir.sh"), str(good)], tmp_path)
    assert r.returncode == 1 and "spk2utt: missing" in r.stderr
