#!/usr/bin/env python3
"""Stage 10: pack a trained system for deployment, as an ESPnet model archive (+ ONNX).

    python -m dispatch.bin.pack_student EXP_ROOT --out DIR [--system NAME]
        [--test_sets test --metric PESQ_WB] [--model_file F] [--onnx]

Without ``--system``, packs the best KD student (dispatch.results.best): the ``kd_*`` run with the
highest mean ``--metric`` over the test sets (SI_SNR when no KD run has the metric). Writes
``DIR/<system>.zip`` with ESPnet's own packer (``espnet2.bin.pack enh``; a KD student from its
export, ``EXP_ROOT/<system>/export``) and ``DIR/<system>.json``; with ``--onnx`` also
``DIR/<system>.onnx`` (a warning, not an error, for a model that does not export). Stock ESPnet
loads the zip: ``SeparateSpeech.from_pretrained(model_tag="DIR/<system>.zip")``;
``dispatch-enhance --model`` takes it as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from dispatch.results.layout import MODEL_FILES


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp_root", type=Path, help="the recipe's exp dir (holds one folder per system)")
    parser.add_argument("--out", type=Path, required=True, help="folder for <system>.zip/.json/.onnx")
    parser.add_argument("--system", default=None,
                        help="system folder to pack (e.g. kd_mssp_dfkd, student_nokd, teacher); "
                        "default: the best scored kd_* system")
    parser.add_argument("--test_sets", nargs="+", default=[],
                        help="test sets whose scores pick the best KD student (and are recorded)")
    parser.add_argument("--metric", default="PESQ_WB",
                        help="metric that picks the best KD student (SI_SNR if missing)")
    parser.add_argument("--model_file", default=None,
                        help="model file inside a non-KD system folder (default: the first of "
                        f"{', '.join(MODEL_FILES)})")
    parser.add_argument("--onnx", action="store_true",
                        help="also write <system>.onnx (dispatch.bin.export_onnx's graph)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    from dispatch.deploy.loading import ModelLoadError
    from dispatch.deploy.pack import pack

    args = get_parser().parse_args(cmd)
    try:
        info = pack(args.exp_root, args.out, args.system, args.test_sets, args.metric,
                    args.model_file, onnx=args.onnx)
    except (FileNotFoundError, ModelLoadError) as exc:
        print(f"pack_student: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    score = ("" if info["metric"] is None
             else f" ({info['metric']} {info['mean_over_test_sets']:.3f})")
    print(f"pack_student: packed {info['system']}{score} into {info['zip']}")
    if info.get("onnx"):
        print(f"pack_student: wrote {info['onnx']} (max abs error vs PyTorch "
              f"{info['onnx_max_abs_err']:.1e})")
    elif args.onnx:
        print(f"pack_student: warning: no ONNX file: {info['onnx_note']}", file=sys.stderr)


if __name__ == "__main__":
    main()
