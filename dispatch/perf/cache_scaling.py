"""Teacher-cache scaling: size per hour of audio, writing time, the 100-hour extrapolation, and the
effect of float16 storage on the KD losses.

On a generated corpus of ``hours`` (:mod:`dispatch.perf.corpus`), a teacher with random weights
(its config's architecture) is cached twice with ``nj`` writers, in float32 and in float16
(``dispatch.models.teacher_cache``). Reported per storage type: ark bytes, MB per hour of audio,
the start-up seconds (worker processes, teacher loading: paid once), the computing wall and CPU
seconds, and the 100-hour figures: disk and computing scaled linearly (the cache holds one vector
per utterance and the teacher runs once per utterance), plus the start-up once.

float16 effect: the first ``kd_utts`` utterances are read back from both caches through kaldiio (as
ESPnet's loader reads them) and every output-level KD loss is computed with each, for the same
student estimate and reference. The student estimate is the noisy mixture (an untrained student
is close to it); the reference is the clean signal. Reported per method: the relative difference
of the loss and of its gradient with respect to the student estimate (L2 norms).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from dispatch.perf.corpus import make_timing_corpus
from dispatch.perf.models import write_random_model

#: KD losses whose teacher input is the cached waveform (method -> kd_loss_conf)
KD_METHODS = {"l2_mag": ("l2_mag", {}), "sisnr": ("sisnr", {}), "dfkd": ("dfkd", {}),
              "dispatch": ("dispatch", {"base": "dfkd"}), "mssp": ("mssp", {})}


def _load_wavs(scp: Path, utts: Sequence[str]) -> np.ndarray:
    """Arrays of ``utts`` from an scp read by kaldiio or soundfile, as float32 [B, L]."""
    from dispatch.data.scp import read_scp_dict

    entries = read_scp_dict(scp)
    if scp.name.startswith("teacher"):
        import kaldiio

        arrays = [np.asarray(kaldiio.load_mat(entries[u]), dtype=np.float32) for u in utts]
    else:
        import soundfile as sf

        arrays = [sf.read(entries[u], dtype="float32")[0] for u in utts]
    length = min(len(a) for a in arrays)
    return np.stack([a[:length] for a in arrays])  # [B, L]


def float16_effect(data_dir: Path, caches: Dict[str, Path], utts: Sequence[str]) -> Dict[str, dict]:
    """Relative change of every KD loss and its gradient when the teacher comes from the float16
    cache instead of the float32 one.  -> method -> {"loss_rel", "grad_rel", "loss_fp32"}"""
    from dispatch.kd import build_kd_loss

    mix = torch.from_numpy(_load_wavs(data_dir / "wav.scp", utts))  # [B, L]
    ref = torch.from_numpy(_load_wavs(data_dir / "spk1.scp", utts))  # [B, L]
    teachers = {dtype: torch.from_numpy(_load_wavs(path / "teacher1.scp", utts))  # [B, L]
                for dtype, path in caches.items()}
    length = min(mix.shape[-1], *(t.shape[-1] for t in teachers.values()))
    lengths = torch.full((mix.shape[0],), length, dtype=torch.long)  # [B]
    out = {}
    for method, (name, conf) in KD_METHODS.items():
        loss_module = build_kd_loss(name, **conf)
        values, grads = {}, {}
        for dtype, teacher in teachers.items():
            student = mix[:, :length].clone().requires_grad_(True)  # [B, L]
            loss, _ = loss_module(student, teacher[:, :length], ref[:, :length], lengths)
            loss.backward()
            values[dtype], grads[dtype] = float(loss.detach()), student.grad
        out[method] = {
            "loss_fp32": values["float32"],
            "loss_rel": abs(values["float16"] - values["float32"]) / max(abs(values["float32"]), 1e-30),
            "grad_rel": float((grads["float16"] - grads["float32"]).norm()
                              / grads["float32"].norm().clamp_min(1e-30)),
        }
    return out


def measure_cache_scaling(work: Path, teacher_config: str, hours: float = 2.0,
                          utt_seconds: float = 10.0, nj: int = 2, kd_utts: int = 16,
                          fs: int = 16000) -> dict:
    """Write the cache of a generated corpus in both storage types; see the module docstring."""
    from dispatch.models.teacher_cache import cache_teacher

    work = Path(work)
    num_utts = max(1, int(round(hours * 3600 / utt_seconds)))
    data_dir = work / "data"
    start = time.perf_counter()
    make_timing_corpus(str(data_dir), str(work / "wav"), num_utts, utt_seconds, fs, nj=nj)
    made = time.perf_counter() - start
    teacher = write_random_model(teacher_config, work / "teacher")
    runs, caches = {}, {}
    for dtype in ("float32", "float16"):
        caches[dtype] = work / f"cache_{dtype}"
        cache_teacher(str(teacher["config"]), str(teacher["model_file"]), str(data_dir),
                      str(caches[dtype]), nj=nj, dtype=dtype)
        info = json.loads((caches[dtype] / "cache_info.json").read_text())
        per_100h = 100 / info["audio_hours"]
        runs[dtype] = {"ark_bytes": info["ark_bytes"], "MB_per_hour": info["MB_per_hour"],
                       "wall_s": info["wall_seconds"], "startup_s": info["startup_wall_seconds"],
                       "compute_wall_s": info["compute_wall_seconds"],
                       "compute_cpu_s": info["compute_cpu_seconds"],
                       "audio_hours": info["audio_hours"],
                       "float32_fallbacks": len(info["float32_fallbacks"]),
                       "wall_s_per_100h": (info["startup_wall_seconds"]
                                           + info["compute_wall_seconds"] * per_100h),
                       "cpu_s_per_100h": info["compute_cpu_seconds"] * per_100h,
                       "GB_per_100h": info["MB_per_hour"] * 100 / 1e3}
    from dispatch.data.scp import read_scp_dict

    utts = sorted(read_scp_dict(data_dir / "wav.scp"))[:kd_utts]
    return {"teacher_config": str(teacher_config), "hours": runs["float32"]["audio_hours"],
            "utterances": num_utts, "utt_seconds": utt_seconds, "nj": nj,
            "corpus_made_s": made, "runs": runs,
            "float16_effect": float16_effect(data_dir, caches, utts), "kd_utts": len(utts)}


def format_cache_scaling(report: dict) -> str:
    """The report as two Markdown tables."""
    lines = [f"teacher {report['teacher_config']}, {report['hours']:.2f} h in "
             f"{report['utterances']} utterances of {report['utt_seconds']:g} s, nj {report['nj']}",
             "| storage | MB per hour | start-up s | computing wall s | computing CPU s | "
             "100 h: disk GB | 100 h: wall h | 100 h: CPU h |", "|---|---|---|---|---|---|---|---|"]
    for dtype, r in report["runs"].items():
        lines.append(f"| {dtype} | {r['MB_per_hour']:.1f} | {r['startup_s']:.1f} | "
                     f"{r['compute_wall_s']:.1f} | {r['compute_cpu_s']:.1f} | "
                     f"{r['GB_per_100h']:.1f} | {r['wall_s_per_100h'] / 3600:.2f} | "
                     f"{r['cpu_s_per_100h'] / 3600:.2f} |")
    lines += ["", f"float16 storage vs float32, {report['kd_utts']} utterances:",
              "| KD loss | loss (float32 cache) | relative loss change | relative gradient change |",
              "|---|---|---|---|"]
    for method, r in report["float16_effect"].items():
        lines.append(f"| {method} | {r['loss_fp32']:.5g} | {r['loss_rel']:.1e} | {r['grad_rel']:.1e} |")
    return "\n".join(lines)
