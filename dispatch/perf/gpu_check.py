"""The prepared GPU check (``tools/gpu_check.sh``): the paper-size KD training step on one GPU.

For each paper-size pair (configs of ``egs/dns_ins20/enh_distill1/conf/tuning``)

    Conv-TasNet 3.4M -> 0.18M      teacher_tasnet  -> student_tasnet  (AT-KL: derived conv pairs)
    DCCRN-CL -> Distil-DCCRN       teacher_dccrn   -> student_dccrn   (AT-KL: kd_atkl_dccrn.yaml)
    Uformer -> Distil-DCCRN        teacher_uformer -> student_dccrn   (AT-KL: kd_atkl_uformer.yaml)

at batch 16 x 4 s, in fp32 and under bf16 autocast, every method (no KD, ``l2_mag``, ``dfkd``,
``dispatch`` on DFKD, ``mssp``, ``atkl``) is timed by :mod:`dispatch.perf.step_timing` (medians of
5 steps after 2 warm-up steps, methods taking turns): ms per step with the online teacher and with
the teacher cache (the step without the teacher's forward), the KD loss's share of the student's
forward + backward, and the peak GPU memory. Then:

* STFT: the custom path and plain ``torch.stft`` (forward + backward, [16, 64000]) on the device,
  and the path that ``dispatch.kd.stft_backend`` runs there (``AUTO_BACKEND`` unless
  ``DISPATCH_STFT`` says otherwise), so a GPU run shows whether that fixed rule is the faster path;
* teacher throughput: seconds of audio per second of the teacher's forward at batch 16 (what
  writing the cache on this GPU costs; the 100-hour figure follows);
* training: ``python -m dispatch.bin.enh_distill_train --ngpu 1 --use_amp true`` runs 200 steps
  (2 epochs x 100) of the Conv-TasNet pair with ``kd_loss: mssp`` on a generated mini corpus, with
  the teacher cache written on the GPU first (float16, in batches) and read as a data stream;
  then ``dispatch.bin.export_student`` exports the student and stock ESPnet
  (``EnhancementTask.build_model_from_file``) reloads it and must reproduce the student's output.

``smoke=True`` runs exactly this code on the CPU at a tiny size: the same architectures shrunk
(:func:`shrink`), batch 2 x 0.5 s, one timed step (no warm-up), and 2 x 2 training steps with
``--ngpu 0`` (no AMP: ESPnet's AMP is CUDA-only), the training beside the timing to use both
cores (on the GPU it runs after the timing, which it would disturb). Goals printed next to the figures: the KD loss at
most 2% of a student step for output-level methods, a cached KD step at most 1.05x a no-KD step.
"""
from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

import torch
import yaml

from dispatch.utils.io import atomic_write_text

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "egs" / "dns_ins20" / "enh_distill1" / "conf" / "tuning"
#: (name, teacher config, student config, AT-KL overlay or None: derived conv pairs)
PAIRS = (
    ("Conv-TasNet 3.4M -> 0.18M", "teacher_tasnet.yaml", "student_tasnet.yaml", None),
    ("DCCRN-CL -> Distil-DCCRN", "teacher_dccrn.yaml", "student_dccrn.yaml", "kd_atkl_dccrn.yaml"),
    ("Uformer -> Distil-DCCRN", "teacher_uformer.yaml", "student_dccrn.yaml", "kd_atkl_uformer.yaml"),
)
METHODS = ("none", "l2_mag", "dfkd", "dispatch", "mssp", "atkl")
PRECISIONS = (None, "bf16")
KD_SHARE_GOAL = 0.02  # KD loss fwd+bwd / student fwd+bwd, output-level methods
CACHED_STEP_GOAL = 1.05  # cached KD step / no-KD step


@dataclass(frozen=True)
class CheckSize:
    """How big the check runs: the GPU check, or its CPU smoke version."""

    device: str
    batch: int
    seconds: float
    warmup: int
    steps: int
    train_utts: int
    train_batch: int
    train_seconds: float
    train_iters: int  # per epoch; two epochs
    smoke: bool


FULL = CheckSize("cuda", 16, 4.0, 2, 5, 32, 16, 4.0, 100, smoke=False)
SMOKE = CheckSize("cpu", 2, 0.5, 0, 1, 4, 2, 0.5, 2, smoke=True)


def shrink(conf: dict) -> dict:
    """The same architecture at a tiny size (smoke mode): narrow layers, a 128-point STFT."""
    conf = copy.deepcopy(conf)
    separator_conf = conf.setdefault("separator_conf", {})
    if conf.get("encoder") == "stft":
        for key in ("encoder_conf", "decoder_conf"):
            conf.setdefault(key, {}).update(n_fft=128, win_length=128, hop_length=32)
    else:
        for key in ("encoder_conf", "decoder_conf"):
            conf.setdefault(key, {}).update(channel=16, kernel_size=16, stride=8)
    if conf.get("separator") == "tcn":
        separator_conf.update(layer=2, stack=1, bottleneck_dim=16, hidden_dim=32)
    elif conf.get("separator") == "dccrn":
        separator_conf.update(kernel_num=[4, 8, 8, 8, 8, 8], rnn_units=16)
    elif conf.get("separator") == "uformer":
        separator_conf.update(channels=[4, 8, 8], attention_heads=2, ff_hidden=16, num_dilated=2)
    return conf


def pair_configs(conf_dir: Path, teacher: str, student: str, size: CheckSize) -> tuple:
    """(teacher conf, student conf) dicts of a pair, shrunk in smoke mode."""
    confs = [yaml.safe_load((conf_dir / name).read_text()) or {} for name in (teacher, student)]
    return tuple(shrink(c) if size.smoke else c for c in confs)


def atkl_conf(conf_dir: Path, overlay: Optional[str], teacher: torch.nn.Module,
              student: torch.nn.Module) -> dict:
    """The AT-KL ``kd_loss_conf`` of a pair: its overlay's layer pairs that exist in both models
    (all of them at full size), or the derived conv pairs when the pair has no overlay."""
    from dispatch.perf.step_timing import default_atkl_pairs

    if overlay is None:
        return {"layer_pairs": default_atkl_pairs(teacher, student)}
    conf = dict((yaml.safe_load((conf_dir / overlay).read_text()) or {}).get("kd_loss_conf", {}))
    teacher_names = {name for name, _ in teacher.named_modules()}
    student_names = {name for name, _ in student.named_modules()}
    conf["layer_pairs"] = [[t, s] for t, s in conf.get("layer_pairs", [])
                           if t in teacher_names and s in student_names]
    return conf


# ----------------------------------------------------------------------------- step timing


def time_pairs(size: CheckSize, conf_dir: Path, log) -> List[dict]:
    """Every pair x precision x method; one row per method with the figures of the table."""
    from dispatch.models.teacher import build_enh_model
    from dispatch.perf.step_timing import METHODS as KNOWN, run_benchmark

    device = torch.device(size.device)
    rows = []
    for name, teacher_file, student_file, overlay in PAIRS:
        teacher_conf, student_conf = pair_configs(conf_dir, teacher_file, student_file, size)
        torch.manual_seed(0)
        student = build_enh_model(student_conf)
        teacher = build_enh_model(teacher_conf).to(device).eval()
        confs = {m: KNOWN[m] for m in METHODS}
        confs["atkl"] = ("atkl", atkl_conf(conf_dir, overlay, teacher, student))
        for amp in PRECISIONS:
            start = time.perf_counter()
            try:
                report = run_benchmark(teacher, student, confs, size.batch, size.seconds, 16000,
                                       size.steps, size.warmup, device, amp)
            except (RuntimeError, ValueError) as exc:  # e.g. an op without bf16 support
                rows.append(failed_row(name, amp, exc))
                log(f"gpu_check: {name}, {amp or 'fp32'}: failed: {rows[-1]['note']}")
                continue
            for result in report["results"]:
                rows.append(table_row(name, amp, result))
            log(f"gpu_check: {name}, {amp or 'fp32'}: {time.perf_counter() - start:.1f} s")
        del teacher, student
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def failed_row(pair: str, amp: Optional[str], exc: BaseException) -> dict:
    """The line of a pair and precision that could not run, with the error's first line."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"pair": pair, "precision": amp or "fp32", "method": "all", "step_ms": None,
            "step_cached_ms": None, "teacher_ms": None, "student_ms": None, "kd_ms": None,
            "kd_share": None, "cached_over_nokd": None, "peak_MB": None, "goals": "FAILED",
            "note": f"{type(exc).__name__}: {first[:160]}"}


def table_row(pair: str, amp: Optional[str], result: dict) -> dict:
    """One line of the table from a step-timing result, with the goals checked."""
    ms, ratios = result["median_ms"], result["ratios"]
    output_level = result["kd_loss"] not in ("none", "atkl")
    share = ratios.get("kd_over_student")
    cached = ratios.get("step_cached_over_nokd")
    goals = []  # "KD<=2%" and "cached<=1.05x", each met (yes) or not (NO)
    if output_level and share is not None:
        goals.append("yes" if share <= KD_SHARE_GOAL else "NO")
    if output_level and cached is not None:
        goals.append("yes" if cached <= CACHED_STEP_GOAL else "NO")
    return {"pair": pair, "precision": amp or "fp32", "method": result["method"],
            "step_ms": result["step_ms"], "step_cached_ms": result["step_cached_ms"],
            "teacher_ms": ms["teacher"], "student_ms": ms["student"], "kd_ms": ms["kd"],
            "kd_share": share, "cached_over_nokd": cached, "peak_MB": result["peak_mem_MB"],
            "goals": "/".join(goals) if goals else "-",
            "note": result.get("note", "")}


# ----------------------------------------------------------------------------- STFT and teacher


def stft_comparison(size: CheckSize) -> dict:
    """Both STFT paths timed on the device at the check's batch size, and the path the KD losses
    run there."""
    from dispatch.kd import stft_backend

    device = torch.device(size.device)
    samples = int(size.seconds * 16000)
    ms = stft_backend.time_backends(device=device, batch=size.batch, samples=samples)
    return {"ms": ms, "shape": [size.batch, samples], "chosen": stft_backend.choose_backend(device)}


def teacher_throughput(rows: List[dict], size: CheckSize) -> List[dict]:
    """Seconds of audio per second of teacher forward (batch x seconds / teacher ms), per pair."""
    out = []
    for row in rows:
        if row["method"] == "l2_mag" and row["teacher_ms"]:
            speed = size.batch * size.seconds / (row["teacher_ms"] / 1e3)
            out.append({"pair": row["pair"], "precision": row["precision"],
                        "audio_s_per_s": speed, "hours_for_100h": 100.0 / speed})
    return out


# ----------------------------------------------------------------------------- real training


class Job:
    """``python -m ARGS`` started from the repository root, its output going to ``log_file``."""

    def __init__(self, args: List[str], log_file: Path):
        self.args, self.log_file = args, log_file
        self._out = open(log_file, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", *args], cwd=REPO, stdout=self._out,
                                     stderr=subprocess.STDOUT, text=True)

    def wait(self) -> str:
        """Wait for the end; the output, or a one-line RuntimeError naming the log."""
        code = self.proc.wait()
        self._out.close()
        text = self.log_file.read_text()
        if code != 0:
            lines = text.strip().splitlines() or ["(no output)"]
            raise RuntimeError(f"{self.args[0]} failed ({code}), see {self.log_file}: {lines[-1]}")
        return text

    def stop(self) -> None:
        """Kill the job (the check failed before waiting for it) and close its log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def start_training(size: CheckSize, conf_dir: Path, work: Path) -> dict:
    """Make the corpus and a random teacher, write the teacher cache (float16, in batches), and
    start ``enh_distill_train`` (2 epochs, mssp, reading the cache) in the background."""
    from dispatch.data.mini import MiniConfig, make_mini_corpus
    from dispatch.data.shapes import collect_shapes
    from dispatch.models.teacher_cache import cache_teacher
    from dispatch.perf.models import write_random_model

    start = time.perf_counter()
    name, teacher_file, student_file, _ = PAIRS[0]
    teacher_conf, student_conf = pair_configs(conf_dir, teacher_file, student_file, size)
    work.mkdir(parents=True, exist_ok=True)
    corpus = MiniConfig(n_train=size.train_utts, n_valid=2, n_test=0, duration=size.train_seconds)
    make_mini_corpus(corpus, str(work / "data"), str(work / "wav"), nj=1 if size.smoke else 8)
    for split in ("train", "valid"):
        collect_shapes(work / "data" / split, work / "stats" / split)
    teacher = write_random_model(teacher_conf, work / "teacher", seed=1)
    ngpu = 0 if size.smoke else 1
    cache = work / "cache"
    cache_teacher(str(teacher["config"]), str(teacher["model_file"]), str(work / "data" / "train"),
                  str(cache), ngpu=ngpu, batch_size=size.train_batch, dtype="float16")
    student_conf.update(max_epoch=2, num_iters_per_epoch=size.train_iters, batch_type="unsorted",
                        batch_size=size.train_batch, iterator_type="sequence",
                        num_workers=0 if size.smoke else 2, keep_nbest_models=1,
                        best_model_criterion=[["valid", "loss", "min"]], seed=0)
    (work / "student.yaml").write_text(yaml.safe_dump(student_conf))
    data = []
    for split in ("train", "valid"):
        data += [f"--{split}_data_path_and_name_and_type",
                 f"{work}/data/{split}/wav.scp,speech_mix,sound",
                 f"--{split}_data_path_and_name_and_type",
                 f"{work}/data/{split}/spk1.scp,speech_ref1,sound",
                 f"--{split}_shape_file", f"{work}/stats/{split}/speech_mix_shape"]
    data += ["--train_data_path_and_name_and_type", f"{cache}/teacher1.scp,teacher_ref1,kaldi_ark"]
    exp = work / "exp"
    job = Job(["dispatch.bin.enh_distill_train", "--config", str(work / "student.yaml"),
               "--output_dir", str(exp), "--teacher_config", str(teacher["config"]),
               "--teacher_model_file", str(teacher["model_file"]), "--kd_loss", "mssp",
               "--ngpu", str(ngpu), "--use_amp", "false" if size.smoke else "true",
               "--log_interval", "50", "--num_att_plot", "0"]
              + (["--use_tensorboard", "false"] if size.smoke else []) + data, work / "train.log")
    return {"job": job, "exp": exp, "work": work, "pair": name, "ngpu": ngpu, "start": start,
            "train_start": time.perf_counter()}


def finish_training(run: dict, size: CheckSize) -> dict:
    """Wait for the training, export the student, reload the export in stock ESPnet."""
    log = run["job"].wait()
    train_wall = time.perf_counter() - run["train_start"]
    exp, work = run["exp"], run["work"]
    times = [float(t) for t in re.findall(r"\[train\][^\n]*?train_time=([0-9.e+-]+)", log)]
    checkpoint = "latest.pth" if (exp / "latest.pth").exists() else None  # the last epoch
    Job(["dispatch.bin.export_student", str(exp), "--out", str(exp / "export")]
        + (["--model_file", checkpoint] if checkpoint else []), work / "export.log").wait()
    return {"pair": run["pair"], "steps": 2 * size.train_iters, "batch": size.train_batch,
            "seconds": size.train_seconds, "amp": not size.smoke, "ngpu": run["ngpu"],
            "checkpoints": sorted(p.name for p in exp.glob("*epoch.pth")),
            "train_time_s_per_step": times[-1] if times else None, "train_wall_s": train_wall,
            "export_max_abs_diff": export_difference(exp, checkpoint, size),
            "wall_s": time.perf_counter() - run["start"]}


def export_difference(exp: Path, checkpoint: Optional[str], size: CheckSize) -> float:
    """Largest |output difference| between the student inside the exported checkpoint and the
    export reloaded by stock ESPnet, on one random input (CPU)."""
    from espnet2.tasks.enh import EnhancementTask

    exported, _ = EnhancementTask.build_model_from_file(
        str(exp / "export" / "config.yaml"), str(exp / "export" / "model.pth"), "cpu")
    inside, _ = EnhancementTask.build_model_from_file(str(exp / "export" / "config.yaml"), None,
                                                       "cpu")
    last = exp / checkpoint if checkpoint else sorted(
        exp.glob("*epoch.pth"), key=lambda p: int(p.name.split("epoch")[0]))[-1]
    state = torch.load(last, map_location="cpu", weights_only=True)
    inside.load_state_dict({k[len("student."):]: v for k, v in state.items()
                            if k.startswith("student.")}, strict=True)
    x = 0.1 * torch.randn(1, int(size.train_seconds * 16000),
                          generator=torch.Generator().manual_seed(0))  # [1, L]
    lengths = torch.tensor([x.shape[-1]])
    outputs = []
    for model in (exported, inside):
        model.eval()
        with torch.no_grad():
            outputs.append(model.forward_enhance(x, lengths, additional={})[0][0])  # [1, L]
    return float((outputs[0] - outputs[1]).abs().max())


# ----------------------------------------------------------------------------- the check


def format_report(report: dict) -> str:
    """The one table, then a few lines for STFT, teacher throughput and training."""
    size = report["size"]
    head = (f"{'pair':<26}{'prec':<6}{'method':<10}{'step ms':>9}{'cached':>9}{'KD ms':>8}"
            f"{'KD/stu':>8}{'cache/none':>11}{'peak MB':>9}  KD<=2%/cached<=1.05x")
    lines = [f"# gpu_check{' --smoke' if size['smoke'] else ''}: {report['device_name']}, "
             f"torch {report['torch']}, batch {size['batch']} x {size['seconds']:g} s, medians of "
             f"{size['steps']} steps after {size['warmup']} warm-up, {report['date']}", head]

    def fmt(value, spec, scale=1.0):
        return "-" if value is None else format(value * scale, spec)

    for r in report["rows"]:
        lines.append(f"{r['pair'][:25]:<26}{r['precision']:<6}{r['method']:<10}"
                     f"{fmt(r['step_ms'], '.1f'):>9}{fmt(r['step_cached_ms'], '.1f'):>9}"
                     f"{fmt(r['kd_ms'], '.1f'):>8}{fmt(r['kd_share'], '.2%'):>8}"
                     f"{fmt(r['cached_over_nokd'], '.3f'):>11}{fmt(r['peak_MB'], '.0f'):>9}  "
                     f"{r['goals']}" + (f"  ({r['note']})" if r["note"] else ""))
    stft = report["stft"]
    lines.append(f"# STFT fwd+bwd {stft['shape']}: custom {stft['ms']['custom']:.2f} ms, torch.stft "
                 f"{stft['ms']['torch']:.2f} ms; the KD losses run: {stft['chosen']}")
    for t in report["teacher_throughput"]:
        lines.append(f"# teacher cache on this device: {t['pair']} {t['precision']}: "
                     f"{t['audio_s_per_s']:.0f} s of audio per s, 100 h in "
                     f"{t['hours_for_100h'] * 60:.1f} min of teacher forward")
    train = report.get("train")
    if train:
        lines.append(f"# training: {train['steps']} steps of {train['pair']} (mssp, teacher cache "
                     f"float16, batch {train['batch']} x {train['seconds']:g} s, ngpu "
                     f"{train['ngpu']}, amp {train['amp']}): {fmt(train['train_time_s_per_step'], '.3f')}"
                     f" s/step (ESPnet train_time), {train['train_wall_s']:.0f} s wall with start-up; "
                     f"checkpoints {', '.join(train['checkpoints'])}; export reloaded by ESPnet, "
                     f"max |diff| {train['export_max_abs_diff']:.1e}")
    lines.append(f"# total {report['wall_s']:.0f} s")
    return "\n".join(lines)


def run_check(smoke: bool = False, out_dir: Optional[str] = None, conf_dir: Optional[str] = None,
              skip_train: bool = False, log=print) -> Optional[dict]:
    """Run the check; print and return the report. Without a GPU (and not smoke): one line, None."""
    if not smoke and not torch.cuda.is_available():
        log("gpu_check: no CUDA GPU on this machine (torch.cuda.is_available() is False), so "
            "nothing was measured; tools/gpu_check.sh --smoke runs the CPU self-test")
        return None
    import dispatch.models.register  # noqa: F401  (the uformer separator)

    start = time.perf_counter()
    size = SMOKE if smoke else FULL
    conf_dir = Path(conf_dir) if conf_dir else CONF_DIR
    out = Path(out_dir) if out_dir else REPO / "exp" / ("gpu_check_smoke" if smoke else "gpu_check")
    out.mkdir(parents=True, exist_ok=True)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    device_name = torch.cuda.get_device_name(0) if size.device == "cuda" else "CPU (smoke)"
    report: Dict = {"size": asdict(size), "device_name": device_name, "torch": torch.__version__,
                    "date": time.strftime("%Y-%m-%d", time.gmtime())}
    training = None
    if not skip_train and smoke:  # on the CPU the training runs beside the timing (2 cores)
        training = start_training(size, conf_dir, out / "train")
    try:
        report["stft"] = stft_comparison(size)
        report["rows"] = time_pairs(size, conf_dir, progress)
        report["teacher_throughput"] = teacher_throughput(report["rows"], size)
    except BaseException:
        if training is not None:  # no training left behind when the timing fails
            training["job"].stop()
        raise
    atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=2) + "\n")
    if not skip_train and not smoke:  # on the GPU only after the timing, which it would disturb
        training = start_training(size, conf_dir, out / "train")
    if training is not None:
        report["train"] = finish_training(training, size)
    report["wall_s"] = time.perf_counter() - start
    atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=2) + "\n")
    text = format_report(report)
    atomic_write_text(out / "gpu_check.txt", text + "\n")
    log(text)
    return report
