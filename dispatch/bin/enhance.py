#!/usr/bin/env python3
"""Enhance a WAV file, a folder of WAVs or an scp with a trained student (console: dispatch-enhance).

    python -m dispatch.bin.enhance --model MODEL --input IN --output OUT [--device cpu]

MODEL: an export dir (config.yaml + model.pth), a packed .zip (dispatch.bin.pack_student) or an
.onnx file (dispatch.bin.export_onnx). IN: a file, a folder (every .wav/.flac below it) or an
.scp; OUT: a file or a folder (see dispatch.deploy.files). Any input rate is resampled to the
model's and back. A bad file gets one line on stderr and the others are still enhanced; the exit
status is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True,
                        help="export dir (config.yaml + model.pth), packed .zip or .onnx file")
    parser.add_argument("--input", required=True, help="WAV/FLAC file, folder of them, or .scp")
    parser.add_argument("--output", required=True,
                        help="output file (for one input file) or folder")
    parser.add_argument("--device", default="cpu",
                        help="torch device, e.g. cpu or cuda:0 (ONNX: CUDA provider if installed)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch/onnxruntime (default: their own choice)")
    parser.add_argument("--no_normalize", action="store_true",
                        help="write the model's raw scale as float WAV instead of peak 0.9 PCM-16")
    parser.add_argument("--stream_chunk_ms", type=float, default=None,
                        help="run a causal student chunk by chunk with chunks of this many ms, as "
                        "a streaming device would (same output; CPU; not for .onnx)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    from dispatch.deploy.files import InputError, enhance_jobs, plan_jobs, write_output_scp
    from dispatch.deploy.loading import ModelLoadError, load_enhancer

    args = get_parser().parse_args(cmd)
    try:
        jobs, scp = plan_jobs(args.input, args.output)
        enhancer = load_enhancer(args.model, device=args.device, threads=args.threads,
                                 stream_chunk_ms=args.stream_chunk_ms)
    except (InputError, ModelLoadError) as exc:
        print(f"enhance: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    done, errors = enhance_jobs(enhancer, jobs, normalize=not args.no_normalize,
                                progress=len(jobs) > 1 and not args.quiet)
    if scp is not None and done:
        write_output_scp(scp, done)
    where = jobs[0].target if len(jobs) == 1 else args.output
    print(f"enhance: {len(done)} of {len(jobs)} files enhanced ({enhancer.form} model at "
          f"{enhancer.fs} Hz) -> {where}", file=sys.stderr)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
