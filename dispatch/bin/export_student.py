#!/usr/bin/env python3
"""Export the student of a distillation exp dir as a stock ESPnet enhancement model.

    python -m dispatch.bin.export_student EXP_DIR --out DIR [--model_file valid.si_snr_loss.best.pth]

writes ``DIR/config.yaml`` (the student's options, without the KD ones) and ``DIR/model.pth``
(the ``student.*`` weights with the prefix removed, teacher left out). Stock ESPnet loads them:

    python -m espnet2.bin.enh_inference --train_config DIR/config.yaml --model_file DIR/model.pth ...

The export is verified before it is written: the weights must load strictly into the model that
ESPnet's ``EnhancementTask`` builds from the exported config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
import yaml

from dispatch.utils.checkpoints import DEFAULT_MODEL_FILES, checkpoints_in
from dispatch.utils.io import atomic_write, atomic_write_text
from dispatch.utils.weights import load_weights, model_state

STUDENT_PREFIX = "student."


def find_model_file(exp_dir: Path, model_file: Optional[str]) -> Path:
    if model_file is not None:
        path = Path(model_file)
        path = path if path.is_absolute() or path.exists() else exp_dir / model_file
        if not path.is_file():
            raise FileNotFoundError(f"model file '{path}' does not exist; {exp_dir} has: "
                                    f"{checkpoints_in(exp_dir)}; pass one of them as --model_file")
        return path
    for name in DEFAULT_MODEL_FILES:
        if (exp_dir / name).is_file():
            return exp_dir / name
    epochs = sorted(exp_dir.glob("*epoch.pth"), key=lambda p: int(p.name.split("epoch")[0]))
    if epochs:
        return epochs[-1]
    raise FileNotFoundError(f"no model file in '{exp_dir}' (looked for "
                            f"{', '.join(DEFAULT_MODEL_FILES)} and *epoch.pth): train first")


def student_state_dict(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Keep ``student.*`` keys, without the prefix; [teacher.* and kd_loss.* are dropped]."""
    student = {k[len(STUDENT_PREFIX):]: v for k, v in model_state(state).items()
               if k.startswith(STUDENT_PREFIX)}
    if not student:
        raise ValueError("the model file has no 'student.*' weights: it is not a distillation "
                         "checkpoint (a stock ESPnet model needs no export)")
    return student


def student_config(config: dict) -> dict:
    from dispatch.tasks.enh_distill import DISTILL_OPTIONS

    return {k: v for k, v in config.items() if k not in DISTILL_OPTIONS}


def export_student(exp_dir: Path, out_dir: Path, model_file: Optional[str] = None) -> Path:
    from dispatch.models.teacher import build_enh_model

    exp_dir = Path(exp_dir)
    config_path = exp_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"'{config_path}' does not exist: EXP_DIR must be the output "
                                "dir of dispatch.bin.enh_distill_train")
    with config_path.open(encoding="utf-8") as f:
        config = student_config(yaml.safe_load(f))
    source = find_model_file(exp_dir, model_file)
    state = student_state_dict(load_weights(source))  # weights only: a file cannot run code

    build_enh_model(config, state)  # strict: fails loudly if the export would be incomplete

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml",
                      yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    atomic_write(out_dir / "model.pth", lambda p: torch.save(state, p))
    return out_dir


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp_dir", type=Path, help="output dir of enh_distill_train")
    parser.add_argument("--out", type=Path, required=True, help="where to write the student")
    parser.add_argument("--model_file", default=None,
                        help=f"checkpoint in EXP_DIR (default: first of "
                        f"{', '.join(DEFAULT_MODEL_FILES)}, then the last *epoch.pth)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    try:
        out = export_student(args.exp_dir, args.out, args.model_file)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"export_student: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    print(f"export_student: wrote {out}/config.yaml and {out}/model.pth")


if __name__ == "__main__":
    main()
