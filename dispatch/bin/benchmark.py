#!/usr/bin/env python3
"""Time one KD training step, split into its parts, for every KD method, in one process.

    python -m dispatch.bin.benchmark --teacher_config T.yaml --student_config S.yaml \
        --batch 8 --seconds 4 [--steps 5] [--warmup 2] [--methods none l2_mag dfkd dispatch mssp atkl] \
        [--device cpu|cuda] [--amp bf16] [--kd_conf KD.yaml] [--atkl_conf ATKL.yaml] [--json]

Both configs are ordinary ESPnet enh training configs; the models get random weights (timing does not
depend on them). A step of method M is timed in five parts (medians over ``--steps`` steps after
``--warmup`` untimed ones; on CUDA every part ends with ``torch.cuda.synchronize()``). The methods
take turns step by step (round robin), so a shared machine's slow drifts hit all of them alike:

``data``     making the batch (mixture, reference: [B, L] random signals) and moving it to the device
``teacher``  the teacher's forward pass under ``no_grad`` (eval mode), as ``ESPnetEnhDistillModel``
             runs it (ESPnet forward; the estimate is read at ``forward_loss``)
``student``  the student's ESPnet forward with its task loss, plus ONE backward pass through the
             student that carries both the task-loss gradient and the KD gradient (as in training)
``kd``       the KD loss forward plus its backward down to the student's estimate (and, for AT-KL,
             down to the tapped student features): the student's outputs are detached into leaves
             for this, so ``kd`` is the loss's own cost and the student's backward is in ``student``
``optim``    ``zero_grad`` + Adam ``step`` on the student's parameters

``step`` = the sum of the parts (online teacher); ``step_cached`` = ``step - teacher``, the step with a
teacher-output cache (``dispatch.bin.cache_teacher``; reading one more waveform is part of data
loading and is not modelled). Feature KD (AT-KL) needs the teacher's features, so the cache does
not apply to it and its ``step_cached`` is empty. Method ``none`` runs neither the teacher nor a KD
loss.

Memory: on CUDA the peak of ``torch.cuda.max_memory_allocated`` over the timed steps; on CPU the
largest growth of the resident set size within one timed step, sampled every millisecond (an
approximation: the allocator may keep freed pages).

KD confs: ``dispatch`` is DISPatch on the DFKD base (``base: dfkd``) and ``mssp`` is MSSP with its
defaults (DFKD base, 10/40 patches, adaptive split), the paper's best system; ``dispatch_l2``
(DISPatch on ``l2_mag``) may be added to ``--methods``. ``--kd_conf`` is a YAML mapping
``method -> kd_loss_conf`` that replaces these defaults. AT-KL layer pairs: ``--atkl_conf`` is a YAML
``kd_loss_conf`` for ``atkl`` (``layer_pairs: [[teacher_path, student_path], ...]``, ...); without it
the pairs are derived: the first and the last ``Conv1d``/``Conv2d`` module under ``separator.`` whose
path exists in both models (for Conv-TasNet: the bottleneck conv and the mask conv). When no such
module exists, AT-KL runs with its output term only and the report says so.

The report also gives the deployment figures of the student and the teacher
(``dispatch.deploy.stats``: params_M, macs_G_per_s, rtf_cpu_1thread), unless ``--no_model_stats``.
Ratios printed: ``kd / student`` (KD loss fwd+bwd over student fwd+bwd), ``kd / kd(l2_mag)``,
``step / step(none)`` and ``step_cached / step(none)``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Optional, Sequence

import torch

from dispatch.perf.step_timing import (DEFAULT_METHODS, METHODS, format_table, method_confs,
                                       model_figures, run_benchmark)
from dispatch.utils.io import atomic_write_text


# ----------------------------------------------------------------------------- entry point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher_config", required=True, help="ESPnet enh config of the teacher")
    parser.add_argument("--student_config", required=True, help="ESPnet enh config of the student")
    parser.add_argument("--batch", type=int, default=8, help="utterances per batch")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per utterance")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per method first")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS),
                        help=f"KD methods to time (choices: {', '.join(METHODS)})")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--amp", choices=["none", "bf16"], default="none",
                        help="autocast the forward passes in bfloat16")
    parser.add_argument("--kd_conf", default=None, help="YAML: method -> kd_loss_conf")
    parser.add_argument("--atkl_conf", default=None, help="YAML kd_loss_conf for atkl")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0, help="random seed (weights, batches)")
    parser.add_argument("--no_model_stats", action="store_true",
                        help="skip the params / MACs / RTF figures")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--out", default=None, help="also write the JSON report to this file")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> dict:
    from dispatch.models.teacher import build_enh_model

    args = get_parser().parse_args(cmd)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmark: error: --device cuda but no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    student = build_enh_model(args.student_config)
    teacher = build_enh_model(args.teacher_config).to(device).eval()
    confs = method_confs(args.methods, args.kd_conf, args.atkl_conf, teacher, student)
    report = run_benchmark(teacher, student, confs, args.batch, args.seconds, args.fs, args.steps,
                           args.warmup, device, None if args.amp == "none" else args.amp, args.seed)
    report.update(teacher_config=str(args.teacher_config), student_config=str(args.student_config))
    if not args.no_model_stats:
        report["model_stats"] = model_figures(student, teacher, args.fs, args.seconds)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text + "\n")
    print(text if args.json else format_table(report), flush=True)
    return report


if __name__ == "__main__":
    main()
