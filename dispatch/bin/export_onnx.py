#!/usr/bin/env python3
"""Export an enhancement student to ONNX: one graph from a [1, L] float32 waveform to its [1, L]
estimate, for any L from one encoder window up (stored in the file's metadata).

    python -m dispatch.bin.export_onnx EXPORT_DIR_OR_ZIP --out student.onnx [--exporter dynamo]

MODEL is an export dir (``config.yaml`` + ``model.pth``) or a packed zip. Conv-TasNet students
(``encoder: conv``, ``separator: tcn``) export; STFT models (DCCRN, Distil-DCCRN, Uformer) do not,
and the error says why (see dispatch.deploy.onnx_export). The file is written only after
onnxruntime's output matched PyTorch's within ``--tol`` on a test signal.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence


def get_parser() -> argparse.ArgumentParser:
    from dispatch.deploy.onnx_export import EXPORTERS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="export dir (config.yaml + model.pth) or packed .zip")
    parser.add_argument("--out", required=True, help="the .onnx file to write")
    parser.add_argument("--exporter", choices=EXPORTERS, default="dynamo",
                        help="torch.export-based exporter (default) or the faster, older "
                        "TorchScript one; both give the same outputs")
    parser.add_argument("--opset", type=int, default=None,
                        help="ONNX opset (default: the exporter's own, 18 for dynamo, 17 otherwise)")
    parser.add_argument("--tol", type=float, default=1e-4,
                        help="largest allowed max abs difference from PyTorch on the check signal")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    from dispatch.deploy.onnx_export import export_model_file

    args = get_parser().parse_args(cmd)
    try:
        report = export_model_file(args.model, args.out, args.exporter, args.opset, args.tol)
    except ValueError as exc:  # ModelLoadError, NotExportable, a failed check
        print(f"export_onnx: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    print(f"export_onnx: wrote {report['onnx']} ({report['sample_rate']} Hz, inputs of at least "
          f"{report['min_samples']} samples; max abs error vs PyTorch {report['max_abs_err']:.1e})")


if __name__ == "__main__":
    main()
