"""Draw which spectrogram patches DISPatch / MSSP would distil for one noisy/clean pair.

Usage::

    python -m dispatch.bin.plot_patches \
        --teacher_config exp/teacher/config.yaml \
        --teacher_model_file exp/teacher/valid.loss.best.pth \
        --student_config exp/student_nokd/config.yaml \
        --student_model_file exp/student_nokd/valid.loss.best.pth \
        --noisy noisy.wav --clean clean.wav --kd_loss mssp --kd_loss_conf '{split: adaptive}' \
        --out patches.png

Both models are ESPnet enhancement models (``config.yaml`` + ``.pth``). The figure
(:mod:`dispatch.results.patch_figure`) has the noisy log-magnitude spectrogram, then for every
band (one for ``dispatch``, low and high for ``mssp``) the Knowledge Gap Score of each patch and
the selected patches, computed by :func:`dispatch.kd.patch_selection_map`.
"""
from __future__ import annotations

import argparse
import os
from typing import Optional, Sequence

import torch
import yaml

from dispatch.kd import build_kd_loss
from dispatch.results.patch_figure import draw_patch_figure, read_pair, selection_arrays


def parse_conf(text: Optional[str]) -> dict:
    """A YAML/JSON mapping given inline or as a file path; empty for None."""
    if not text:
        return {}
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    conf = yaml.safe_load(text)
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise ValueError(f"--kd_loss_conf must be a mapping, got {type(conf).__name__}")
    return conf


def load_model(config: str, model_file: str, device: str = "cpu") -> torch.nn.Module:
    """Load an ESPnet enhancement model from its ``config.yaml`` and ``.pth`` (weights only)."""
    from dispatch.models.teacher import build_enh_model

    return build_enh_model(config, model_file).to(device).eval()


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Plot the Knowledge Gap Score and the patches DISPatch/MSSP select for one "
        "utterance.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--teacher_config", required=True, help="teacher ESPnet config.yaml")
    parser.add_argument("--teacher_model_file", required=True, help="teacher .pth")
    parser.add_argument("--student_config", required=True, help="student ESPnet config.yaml")
    parser.add_argument("--student_model_file", required=True, help="student .pth")
    parser.add_argument("--noisy", required=True, help="noisy mono wav")
    parser.add_argument("--clean", required=True, help="clean mono wav (same length and rate)")
    parser.add_argument("--kd_loss", default="dispatch", choices=["dispatch", "mssp"],
                        help="selective KD method whose patches to draw")
    parser.add_argument("--kd_loss_conf", default=None,
                        help="conf of the KD method: a YAML/JSON mapping or a file holding one")
    parser.add_argument("--out", required=True, help="output PNG")
    parser.add_argument("--device", default="cpu", help="torch device for the two models")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    kd_loss = build_kd_loss(args.kd_loss, **parse_conf(args.kd_loss_conf))  # bad conf: fails first
    noisy, clean, fs = read_pair(args.noisy, args.clean)  # [1, L], [1, L]
    try:
        teacher = load_model(args.teacher_config, args.teacher_model_file, args.device)
        student = load_model(args.student_config, args.student_model_file, args.device)
    except ValueError as exc:  # UnsafeWeightsError (dispatch.utils.weights) or EnhModelError
        # (dispatch.models.teacher): both ValueErrors whose message is one line
        raise SystemExit(f"plot_patches: error: {exc}") from None
    noisy_logmag, maps = selection_arrays(kd_loss, teacher, student, noisy.to(args.device),
                                          clean.to(args.device), fs)
    draw_patch_figure(noisy_logmag, maps, args.out, fs, kd_loss.hop_length,
                      title=f"{args.kd_loss}: {os.path.basename(args.noisy)}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
