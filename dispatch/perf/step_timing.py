"""Timing of one KD training step, split into its parts, for every KD method (library of
``dispatch.bin.benchmark`` and ``tools/gpu_check.sh``).

A step of a method is timed in five parts (``PARTS``; on CUDA every part ends with a
``torch.cuda.synchronize()``): ``data`` (a random [B, L] batch moved to the device), ``teacher`` (the
frozen teacher's forward under ``no_grad``), ``student`` (the student's ESPnet forward with its task
loss and ONE backward carrying the task and KD gradients), ``kd`` (the KD loss forward and its
backward down to the student's detached estimate) and ``optim`` (Adam step + ``zero_grad``).
``step`` is their sum; ``step_cached`` = ``step - teacher`` is the step with a teacher-output cache
(not for feature KD, which needs the teacher's features). Methods take turns step by step.
The parts run the distillation model's own steps (``teacher_estimate``, ``student_estimate``,
``kd_term`` of ``dispatch.models.enh_distill.ESPnetEnhDistillModel``), as its ``forward`` does.
"""
from __future__ import annotations

import contextlib
import copy
import statistics
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
import yaml

PARTS = ("data", "teacher", "student", "kd", "optim")
DEFAULT_METHODS = ("none", "l2_mag", "dfkd", "dispatch", "mssp", "atkl")
#: method name -> (registered kd_loss, default kd_loss_conf)
METHODS: Dict[str, tuple] = {
    "none": ("none", {}),
    "l2_mag": ("l2_mag", {}),
    "sisnr": ("sisnr", {}),
    "dfkd": ("dfkd", {}),
    "dispatch": ("dispatch", {"base": "dfkd"}),
    "dispatch_l2": ("dispatch", {"base": "l2_mag"}),
    "mssp": ("mssp", {}),
    "atkl": ("atkl", {}),
}


# ----------------------------------------------------------------------------- KD confs


def default_atkl_pairs(teacher: torch.nn.Module, student: torch.nn.Module) -> List[List[str]]:
    """First and last conv module under ``separator.`` present (same path) in both models."""
    teacher_modules = dict(teacher.named_modules())
    convs = (torch.nn.Conv1d, torch.nn.Conv2d)
    common = [name for name, module in student.named_modules()
              if name.startswith("separator.") and isinstance(module, convs)
              and isinstance(teacher_modules.get(name), type(module))]
    if not common:
        return []
    picked = [common[0]] if len(common) == 1 else [common[0], common[-1]]
    return [[name, name] for name in picked]


def method_confs(methods: Sequence[str], kd_conf: Optional[str], atkl_conf: Optional[str],
                 teacher: torch.nn.Module, student: torch.nn.Module) -> Dict[str, tuple]:
    """method -> (kd_loss name, kd_loss_conf) with the overrides of ``--kd_conf``/``--atkl_conf``."""
    overrides = yaml.safe_load(Path(kd_conf).read_text()) if kd_conf else {}
    out = {}
    for method in methods:
        if method not in METHODS:
            raise SystemExit(f"error: unknown KD method {method!r}; choose from "
                             f"{', '.join(METHODS)}")
        name, conf = METHODS[method]
        conf = dict((overrides or {}).get(method, conf))
        if method == "atkl":
            if atkl_conf:
                conf = dict(yaml.safe_load(Path(atkl_conf).read_text()) or {})
            if "layer_pairs" not in conf:
                conf["layer_pairs"] = default_atkl_pairs(teacher, student)
        out[method] = (name, conf)
    return out


# ----------------------------------------------------------------------------- timing helpers


class Timer:
    """Wall-clock time of named parts; synchronises CUDA before every reading."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: Dict[str, float] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        self.times[name] = self.times.get(name, 0.0) + time.perf_counter() - start


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _page_size()


def _page_size() -> int:
    import os

    return os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak, or sampled CPU RSS growth (bytes)."""

    def __init__(self, device: torch.device, interval: float = 0.001):
        self.device, self.interval = device, interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        try:
            self._base = _rss_bytes()
        except OSError:  # no /proc: fall back to ru_maxrss growth (coarse)
            import resource

            self._base, self._thread = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, None
            return self
        self._max = self._base
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, _rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
            return
        if self._thread is None:
            import resource

            self.peak = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self._base)
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(0, max(self._max, _rss_bytes()) - self._base)


# ----------------------------------------------------------------------------- one step


def _autocast(device: torch.device, amp: Optional[str]):
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(model, optimizer: torch.optim.Optimizer, batch: int, samples: int,
              device: torch.device, amp: Optional[str], seed: int
              ) -> Callable[[], Dict[str, float]]:
    """A closure running one timed training step of ``model`` (an ``ESPnetEnhDistillModel``),
    made of the model's own steps: ``teacher_estimate``, ``student_estimate`` and ``kd_term``."""
    generator = torch.Generator().manual_seed(seed)
    kd_on = model.kd_active

    def step() -> Dict[str, float]:
        timer = Timer(device)
        with timer.part("data"):
            ref = 0.1 * torch.randn(batch, samples, generator=generator)  # [B, L]
            mix = ref + 0.05 * torch.randn(batch, samples, generator=generator)  # [B, L]
            lengths = torch.full((batch,), samples, dtype=torch.long)  # [B]
            mix, ref, lengths = (x.to(device, non_blocking=True) for x in (mix, ref, lengths))
        if kd_on:
            with timer.part("teacher"), _autocast(device, amp):
                teacher = model.teacher_estimate(mix, lengths, speech_ref1=ref)
        with timer.part("student"):
            with _autocast(device, amp):
                student = model.student_estimate(mix, lengths, speech_ref1=ref)
            if not kd_on:
                student.loss.backward()
        if kd_on:
            with timer.part("kd"):
                leaves = as_leaves(student)  # the KD backward stops at the student's outputs
                with _autocast(device, amp):
                    kd = model.kd_term(leaves, teacher)
                if kd.loss.requires_grad:  # a skipped term (non-finite teacher) has no graph
                    (model.kd_weight * kd.loss).backward()
            with timer.part("student"):
                outputs = [student.loss, student.estimate] + list(student.features or [])
                grads = [torch.ones_like(student.loss)] + [
                    _zero_if_none(leaf.grad, out) for leaf, out in
                    zip([leaves.estimate] + list(leaves.features or []), outputs[1:])]
                torch.autograd.backward(outputs, grads)
        with timer.part("optim"):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return timer.times

    return step


def as_leaves(student):
    """A copy of a ``StudentEstimate`` whose estimate [B, L] and features are detached leaves that
    require grad, so that the KD loss's backward is timed on its own and stops there."""
    import dataclasses

    features = student.features
    return dataclasses.replace(
        student, estimate=student.estimate.detach().requires_grad_(True),
        features=None if features is None else [f.detach().requires_grad_(True) for f in features])


def _zero_if_none(grad: Optional[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad


def prepare_method(method: str, kd_name: str, kd_conf: dict, teacher, student, batch: int,
                   samples: int, device: torch.device, amp: Optional[str], seed: int) -> dict:
    """The distillation model of one method (a fresh copy of the student) and its step closure."""
    from dispatch.kd import build_kd_loss
    from dispatch.models.enh_distill import ESPnetEnhDistillModel

    torch.manual_seed(seed)
    kd_loss = build_kd_loss(kd_name, **kd_conf)
    student = copy.deepcopy(student)  # every method starts from the same weights
    model = ESPnetEnhDistillModel(student, teacher, kd_loss, kd_weight=1.0).to(device)
    model.train()
    optimizer = torch.optim.Adam((p for p in model.parameters() if p.requires_grad), lr=1e-4)
    step = make_step(model, optimizer, batch, samples, device, amp, seed=seed)
    return {"method": method, "kd_name": kd_name, "kd_conf": kd_conf, "model": model,
            "step": step, "records": [], "peak": 0}


def run_interleaved(runs: List[dict], warmup: int, steps: int, device: torch.device) -> None:
    """Warm-up, then step i of every method before step i + 1 of any (round robin), so that the
    slow drifts of a shared machine land on every method alike. Peak memory is per step."""
    for _ in range(warmup):
        for run in runs:
            run["step"]()
    for _ in range(steps):
        for run in runs:
            with PeakMemory(device) as memory:
                run["records"].append(run["step"]())
            run["peak"] = max(run["peak"], memory.peak)


def summarize_method(run: dict) -> dict:
    """Medians (ms) of every part, step totals and peak memory of one method's timed steps."""
    model, records, kd_name, kd_conf = run["model"], run["records"], run["kd_name"], run["kd_conf"]
    model.remove_taps()
    parts = {p: 1e3 * statistics.median(r.get(p, 0.0) for r in records) for p in PARTS}
    totals = [1e3 * sum(r.values()) for r in records]
    cached = [1e3 * (sum(r.values()) - r.get("teacher", 0.0)) for r in records]
    cacheable = not model.feature_kd  # feature KD (AT-KL) runs the teacher anyway
    result = {"method": run["method"], "kd_loss": kd_name, "kd_loss_conf": kd_conf,
              "median_ms": parts, "step_ms": statistics.median(totals),
              "step_cached_ms": statistics.median(cached) if cacheable else None,
              "peak_mem_MB": run["peak"] / 2 ** 20}
    if kd_name == "atkl" and not kd_conf.get("layer_pairs"):
        result["note"] = "no common separator conv layers: AT-KL ran its output term only"
    return result


def add_ratios(results: List[dict]) -> None:
    by_method = {r["method"]: r for r in results}
    none, l2 = by_method.get("none"), by_method.get("l2_mag")
    for r in results:
        ms = r["median_ms"]
        ratios = {}
        if r["kd_loss"] != "none":
            ratios["kd_over_student"] = ms["kd"] / ms["student"] if ms["student"] else None
            if l2 is not None and l2["median_ms"]["kd"]:
                ratios["kd_over_l2_mag"] = ms["kd"] / l2["median_ms"]["kd"]
        if none is not None and none["step_ms"]:
            ratios["step_over_nokd"] = r["step_ms"] / none["step_ms"]
            if r["step_cached_ms"] is not None:
                ratios["step_cached_over_nokd"] = r["step_cached_ms"] / none["step_ms"]
        r["ratios"] = ratios


def format_table(report: dict) -> str:
    head = (f"{'method':<12}" + "".join(f"{p:>9}" for p in PARTS)
            + f"{'step':>9}{'cached':>9}{'mem_MB':>9}"
            + f"{'kd/stu':>9}{'kd/l2':>8}{'step/none':>10}{'cache/none':>11}")
    lines = [f"# {report['setup']}", "# medians in ms over "
             f"{report['steps']} steps after {report['warmup']} warm-up steps", head]

    def fmt(value, spec):
        return format(value, spec) if value is not None else "-".rjust(int(spec.split(".")[0]))

    for r in report["results"]:
        ms, ra = r["median_ms"], r["ratios"]
        pct = ra.get("kd_over_student")
        lines.append(f"{r['method']:<12}" + "".join(f"{ms[p]:9.1f}" for p in PARTS)
                     + f"{r['step_ms']:9.1f}" + fmt(r["step_cached_ms"], "9.1f")
                     + f"{r['peak_mem_MB']:9.1f}"
                     + (f"{100 * pct:8.2f}%" if pct is not None else f"{'-':>9}")
                     + fmt(ra.get("kd_over_l2_mag"), "8.2f")
                     + fmt(ra.get("step_over_nokd"), "10.3f")
                     + fmt(ra.get("step_cached_over_nokd"), "11.3f"))
        if "note" in r:
            lines.append(f"  note ({r['method']}): {r['note']}")
    for who, stats in report.get("model_stats", {}).items():
        lines.append(f"# {who}: params {stats['params_M']:.3f} M, "
                     f"{stats['macs_G_per_s']:.3f} GMAC/s, RTF (CPU, 1 thread) "
                     f"{stats['rtf_cpu_1thread']:.4f}")
    return "\n".join(lines)


def model_figures(student: torch.nn.Module, teacher: torch.nn.Module, fs: int, seconds: float
                  ) -> Dict[str, dict]:
    """``{"student": ..., "teacher": ...}``: params_M, macs_G_per_s and rtf_cpu_1thread of each
    (``dispatch.deploy.stats.model_stats``) on copies, all parameters counted as trainable."""
    from dispatch.deploy.stats import model_stats

    figures = {}
    for who, model in (("student", student), ("teacher", teacher)):
        model = copy.deepcopy(model).cpu()
        for p in model.parameters():  # the distillation model froze the teacher's
            p.requires_grad_(True)
        figures[who] = model_stats(model, fs, seconds)
    return figures


def run_benchmark(teacher: torch.nn.Module, student: torch.nn.Module, confs: Dict[str, tuple],
                  batch: int, seconds: float, fs: int, steps: int, warmup: int,
                  device: torch.device, amp: Optional[str] = None, seed: int = 0) -> dict:
    """Time every method of ``confs`` (method -> (kd_loss, kd_loss_conf)) on ``device``.

    ``teacher`` is moved to ``device``; every method trains its own copy of ``student``. Returns
    the report: setup line, sizes and one result per method (medians, ratios, peak memory).
    """
    teacher = teacher.to(device).eval()
    samples = int(round(seconds * fs))
    runs = [prepare_method(method, name, conf, teacher, student, batch, samples, device, amp, seed)
            for method, (name, conf) in confs.items()]
    run_interleaved(runs, warmup, steps, device)
    results = [summarize_method(run) for run in runs]
    add_ratios(results)
    for run in runs:  # free the copies before the next configuration is timed
        run.clear()
    setup = (f"batch {batch} x {seconds:g} s at {fs} Hz, device {device}, amp {amp or 'off'}, "
             f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return {"setup": setup, "batch": batch, "seconds": seconds, "fs": fs, "steps": steps,
            "warmup": warmup, "device": str(device), "amp": amp, "results": results}
