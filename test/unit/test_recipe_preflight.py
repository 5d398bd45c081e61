"""Pre-flight checks, training-dir option records, job-log helpers and the stage-2 data-dir
operations (dispatch.recipe, dispatch.data.datadir_ops)."""
from __future__ import annotations

import argparse
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
import yaml

from helpers import REPO


def write_dir(directory, seconds, fs=16000):
    """A data dir with one mixture/reference pair per entry of ``seconds``."""
    (directory / "wav").mkdir(parents=True)
    rows = {"wav.scp": [], "spk1.scp": [], "utt2spk": []}
    rng = np.random.default_rng(0)
    for i, sec in enumerate(seconds):
        utt = f"u{i:02d}"
        for name, tag in (("wav.scp", "mix"), ("spk1.scp", "ref")):
            path = directory / "wav" / f"{utt}_{tag}.wav"
            sf.write(path, 0.1 * rng.standard_normal(int(sec * fs)).astype(np.float32), fs)
            rows[name].append(f"{utt} {path}")
        rows["utt2spk"].append(f"{utt} spk{i % 2}")
    for name, lines in rows.items():
        (directory / name).write_text("\n".join(lines) + "\n")
    (directory / "spk2utt").write_text("spk0 " + " ".join(
        r.split()[0] for r in rows["utt2spk"][::2]) + "\nspk1 " + " ".join(
        r.split()[0] for r in rows["utt2spk"][1::2]) + "\n")
    return directory


@pytest.fixture
def chunk_config(tmp_path):
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump({"iterator_type": "chunk", "chunk_length": 64000, "batch_size": 4}))
    return path


def test_effective_options_and_chunk_lengths(chunk_config):
    from dispatch.recipe.preflight import chunk_lengths, effective_options

    opts = effective_options(str(chunk_config), ["--max_epoch", "3", "--chunk_length=16000"])
    assert opts["chunk_length"] == 16000 and opts["iterator_type"] == "chunk" and opts["batch_size"] == 4
    assert effective_options(str(chunk_config), ["--iterator_type", "sequence"])["iterator_type"] == "sequence"
    assert chunk_lengths(8000) == [8000] and chunk_lengths("100,200") == [100, 200]
    assert chunk_lengths("3-5") == [3, 4, 5]


def test_short_clips_and_4s_chunks_stop_with_the_option_to_change(tmp_path, chunk_config):
    from dispatch.recipe.preflight import preflight_problems

    train = write_dir(tmp_path / "train", [1.0, 2.0, 3.0, 3.5])
    valid = write_dir(tmp_path / "valid", [2.5, 3.0])
    errors, notes = preflight_problems(0, "", 16000, [(str(train), None), (str(valid), None)],
                                       [("--teacher_args", str(chunk_config), "")], available=0)
    assert len(errors) == 1 and not notes  # train and valid, one line
    assert "\n" not in errors[0] and "--teacher_args" in errors[0] and "train and " in errors[0]
    fix = int(re.search(r'--chunk_length (\d+)', errors[0]).group(1))
    assert 0 < fix < 16000  # 90% of the training clips are longer than the suggestion
    # the suggested value passes
    errors, notes = preflight_problems(0, "", 16000, [(str(train), None), (str(valid), None)],
                                       [("--teacher_args", str(chunk_config), f"--chunk_length {fix}")],
                                       available=0)
    assert not errors
    # some clips shorter: a note with the count, no error
    errors, notes = preflight_problems(0, "", 16000, [(str(train), None)],
                                       [("--student_args", str(chunk_config), "--chunk_length 40000 --batch_size 1")],
                                       available=0)
    assert not errors and "2 of 4 utterances" in notes[0]
    # both jobs: one line naming --train_args
    jobs = [("--teacher_args", str(chunk_config), ""), ("--student_args", str(chunk_config), "")]
    errors, _ = preflight_problems(0, "", 16000, [(str(train), None)], jobs, available=0)
    assert len(errors) == 1 and '--train_args "--chunk_length' in errors[0]
    # chunks that cannot fill one batch: the validation set of 2 clips at batch size 8
    errors, _ = preflight_problems(0, "", 16000, [(str(train), None), (str(valid), None)],
                                   [("--student_args", str(chunk_config),
                                     "--chunk_length 36000 --batch_size 1 --valid_batch_size 8")],
                                   available=0)
    assert len(errors) == 1 and '--valid_batch_size 2"' in errors[0] and "valid" in errors[0]


def test_ngpu_above_the_gpus_present(tmp_path):
    from dispatch.recipe.preflight import ngpu_problem, preflight_problems

    problem = ngpu_problem(1, 0)
    assert "--ngpu 0" in problem and "no GPU" in problem and "\n" not in problem
    assert ngpu_problem(2, 2) is None and ngpu_problem(0, 0) is None
    assert ngpu_problem(4, 0, "utils/run.sh --backend slurm") is None  # GPUs are on the nodes
    errors, _ = preflight_problems(1, "", 16000, [], [], teacher_cache=True,
                                   speed_perturb_factors="0.9 1.0", available=0)
    assert len(errors) == 2 and "--speed_perturb_factors" in errors[1]


def test_changed_options_are_refused_and_force_starts_from_scratch(tmp_path, chunk_config):
    from dispatch.recipe.preflight import OPTIONS_FILE, PreflightError, check_train_dir

    exp = tmp_path / "exp" / "teacher"
    assert check_train_dir(str(exp), str(chunk_config), "--max_epoch 1", False, False) == ""
    for name in ("checkpoint.pth", "1epoch.pth", ".done"):
        (exp / name).write_text("x")
    check_train_dir(str(exp), str(chunk_config), " --max_epoch  1 ", False, False)  # same options
    with pytest.raises(PreflightError, match=r"--tag NAME.*--force true") as info:
        check_train_dir(str(exp), str(chunk_config), "--max_epoch 2", False, False)
    assert "options '--max_epoch 1' -> '--max_epoch 2'" in str(info.value)
    chunk_config.write_text(chunk_config.read_text() + "max_epoch: 9\n")  # an edited config
    with pytest.raises(PreflightError, match="was edited"):
        check_train_dir(str(exp), str(chunk_config), "--max_epoch 1", False, False)
    note = check_train_dir(str(exp), str(chunk_config), "--max_epoch 2", True, True)  # resume
    assert "continuing" in note and (exp / "checkpoint.pth").is_file()
    note = check_train_dir(str(exp), str(chunk_config), "--max_epoch 3", True, False)
    assert "from scratch" in note
    assert not list(exp.glob("*.pth")) and not (exp / ".done").exists()
    assert json.loads((exp / OPTIONS_FILE).read_text())["options"] == "--max_epoch 3"


def test_error_excerpt_ends_at_the_exception():
    from dispatch.recipe.joblog import error_excerpt

    log = ["# python3 -m dispatch.bin.enh_train ...\n", "[nltk_data] Error loading cmudict\n",
           "INFO: building the model\n", "Traceback (most recent call last):\n",
           '  File "x.py", line 3, in <module>\n', "RuntimeError: Found no NVIDIA driver on your system.\n",
           "# Ended (code 1) at today\n"]
    excerpt = error_excerpt(log, max_lines=3)
    assert excerpt[-1] == "RuntimeError: Found no NVIDIA driver on your system."
    assert len(excerpt) == 3 and not any("nltk" in line or line.startswith("#") for line in excerpt)
    assert error_excerpt(["a\n", "b\n", "c\n"], max_lines=2) == ["b", "c"]


def test_console_tee_filters_the_console_and_keeps_the_log(tmp_path):
    from dispatch.recipe.joblog import ConsoleTee, filter_stream

    console = io.StringIO()
    tee = ConsoleTee(console)
    tee.write("[nltk_data] Error loading cmudict: <urlopen error>\n")
    tee.attach(tmp_path / "train.log")
    tee.write("/x/stft.py:79: FutureWarning: `torch.cuda.amp.autocast(args...)` is deprecated.\n"
              "  @torch.cuda.amp.autocast(enabled=False)\nINFO: epoch 1")
    tee.write(" done\nWARNING: Eps is deprecated in si_snr loss, set clamp_db instead.\n")
    tee.flush()
    assert console.getvalue() == "INFO: epoch 1 done\n"
    log = (tmp_path / "train.log").read_text()
    assert "nltk_data" in log and "FutureWarning" in log and "autocast(enabled" in log and "Eps" in log
    out = io.StringIO()
    filter_stream(io.StringIO("[nltk_data] x\nkept\n"), out)
    assert out.getvalue() == "kept\n"


def test_steps_per_epoch_under_the_chunk_iterator():
    from dispatch.recipe.training import estimate_steps, log_interval

    args = argparse.Namespace(iterator_type="chunk", chunk_length=16000, chunk_shift_ratio=0.5,
                              batch_size=4, num_iters_per_epoch=300)
    lengths = {f"u{i}": 24000 for i in range(1000)}  # 1.5 s: (24000-16000)//8000 + 1 = 2 chunks
    steps, text = estimate_steps(args, lengths)
    assert steps == 150 and "counts in utterances, not steps" in text
    args.num_iters_per_epoch = None
    assert estimate_steps(args, lengths)[0] == 500
    assert log_interval(150, 0) == 10 and log_interval(30, 0) == 3 and log_interval(5000, 1) == 100


def test_filter_by_duration_and_speed_perturb(tmp_path):
    from dispatch.data.datadir_ops import filter_by_duration, speed_perturb
    from dispatch.data.scp import DataError, validate_data_dir

    data = write_dir(tmp_path / "train", [0.05, 1.0, 2.0, 3.0])
    counts = filter_by_duration(data, 0.1, 2.5)
    assert counts == {"kept": 2, "too_short": 1, "too_long": 1}
    assert (data / "wav.scp").read_text().split()[::2] == ["u01", "u02"]
    assert validate_data_dir(data) == []
    with pytest.raises(DataError, match="--min_wav_duration"):
        filter_by_duration(data, 10.0, 0)

    out = tmp_path / "train_sp"
    assert speed_perturb(data, out, [0.9, 1.0, 1.1]) == 6
    assert validate_data_dir(out) == []
    ids = (out / "wav.scp").read_text().split()[::2]
    assert ids == ["sp0.9-u01", "sp0.9-u02", "sp1.1-u01", "sp1.1-u02", "u01", "u02"]
    wav = dict(line.split() for line in (out / "wav.scp").read_text().splitlines())
    ref = dict(line.split() for line in (out / "spk1.scp").read_text().splitlines())
    assert sf.info(wav["sp0.9-u01"]).frames == round(16000 / 0.9)
    assert sf.info(ref["sp1.1-u02"]).frames == sf.info(wav["sp1.1-u02"]).frames == round(32000 / 1.1)
    assert "sp1.1-u01 sp1.1-spk1" in (out / "utt2spk").read_text()


def test_one_default_checkpoint_name_everywhere():
    from dispatch.bin.export_student import DEFAULT_MODEL_FILES
    from dispatch.bin.import_teacher import main as _  # noqa: F401
    from dispatch.utils.checkpoints import DEFAULT_CHECKPOINT

    driver = (REPO / "egs/TEMPLATE/enh_distill1/enh_distill.sh").read_text()
    for option in ("teacher_model", "inference_model"):
        assert re.search(rf"^{option}={re.escape(DEFAULT_CHECKPOINT)}\s", driver, re.M), option
    assert DEFAULT_MODEL_FILES[0] == DEFAULT_CHECKPOINT
    readme = (REPO / "README.md").read_text()
    assert f"exp/teacher/{DEFAULT_CHECKPOINT}" in readme


def test_a_failed_job_prints_why(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "job.py").write_text(
        "import sys\nprint('[nltk_data] Error loading cmudict', file=sys.stderr)\n"
        "raise RuntimeError('Found no NVIDIA driver on your system.')\n")
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
    proc = subprocess.run(["bash", str(REPO / "utils" / "run.sh"), "log/train.log", "python3", "job.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "see: log/train.log (exit 1)" in proc.stderr
    assert "RuntimeError: Found no NVIDIA driver on your system." in proc.stderr.splitlines()[-1]
    assert "nltk_data" not in proc.stderr
