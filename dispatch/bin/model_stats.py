#!/usr/bin/env python3
"""Size and cost of an ESPnet enhancement model: parameters, MACs per second, CPU real-time factor.

    python -m dispatch.bin.model_stats --config exp/SYS/config.yaml \
        [--model_file exp/SYS/valid.loss.best.pth] --out exp/SYS/model_stats.json \
        [--fs 16000] [--seconds 4]

Writes ``params_M``, ``macs_G_per_s`` and ``rtf_cpu_1thread`` on ``--seconds`` of audio, and the
deployment figures: ``rtf_onnx_1thread`` (onnxruntime, 1 thread, same input), and for causal
students ``latency_ms`` (algorithmic) and ``rtf_chunk_1thread`` (chunked streaming with
``--chunk_ms`` chunks); ``dispatch.deploy.stats`` defines each. The weights do not change any of
these numbers, so ``--model_file`` is optional.
"""
from __future__ import annotations

import argparse
import json
from typing import Sequence

from dispatch.utils.io import atomic_write_text
from dispatch.utils.weights import UnsafeWeightsError


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="ESPnet enh config.yaml")
    parser.add_argument("--model_file", default=None, help="optional .pth (weights do not matter)")
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate of the test input (Hz)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="length of the test input (s) for MACs and the real-time factor")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (the median is kept)")
    parser.add_argument("--chunk_ms", type=float, default=10.0,
                        help="chunk length (ms) for the streaming figures of causal students")
    parser.add_argument("--no_onnx", action="store_true",
                        help="skip the ONNX export and its onnxruntime real-time factor")
    return parser


def main(cmd: Sequence[str] | None = None) -> dict[str, float]:
    args = get_parser().parse_args(cmd)
    from dispatch.deploy.stats import deployment_stats, model_stats
    from dispatch.models.teacher import EnhModelError, build_enh_model

    try:
        model = build_enh_model(args.config, args.model_file)  # weights only: no code runs
    except (UnsafeWeightsError, EnhModelError) as exc:
        raise SystemExit(f"model_stats: error: {exc}") from None
    stats = model_stats(model, args.fs, args.seconds, args.runs)
    stats.update(deployment_stats(model, args.fs, args.seconds, args.runs, args.chunk_ms,
                                  onnx=not args.no_onnx))
    stats.update(config=str(args.config), model_file=args.model_file)
    atomic_write_text(args.out, json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats), flush=True)
    return stats


if __name__ == "__main__":
    main()
