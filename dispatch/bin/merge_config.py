#!/usr/bin/env python3
"""Merge a student training config with a KD overlay into one ESPnet config.

    python -m dispatch.bin.merge_config STUDENT.yaml KD.yaml --out OUT.yaml

The overlay may hold only the KD options (``kd_loss``, ``kd_loss_conf``, ``kd_weight``); any other
key is an error, so an overlay can never silently change the student it is compared against.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import yaml

from dispatch.utils.io import atomic_write_text

KD_KEYS = ("kd_loss", "kd_loss_conf", "kd_weight")


def merge_config(student: dict, overlay: dict, overlay_name: str = "overlay") -> dict:
    extra = sorted(set(overlay) - set(KD_KEYS))
    if extra:
        raise ValueError(f"{overlay_name} has non-KD keys {', '.join(extra)}; a KD config may only "
                         f"set {', '.join(KD_KEYS)} (put model/training options in the student config)")
    if "kd_loss" not in overlay:
        raise ValueError(f"{overlay_name} does not set kd_loss; add e.g. 'kd_loss: dispatch'")
    merged = dict(student)
    merged.update(overlay)
    return merged


def load_yaml(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"config '{path}' does not exist")
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config '{path}' is not a YAML mapping")
    return data


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("student", type=Path, help="the student's training config (YAML)")
    parser.add_argument("overlay", type=Path, help="a KD overlay: kd_loss, kd_loss_conf, kd_weight only")
    parser.add_argument("--out", type=Path, required=True, help="where the merged config goes")
    args = parser.parse_args(cmd)
    try:
        merged = merge_config(load_yaml(args.student), load_yaml(args.overlay), str(args.overlay))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"merge_config: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, yaml.safe_dump(merged, sort_keys=False))


if __name__ == "__main__":
    main()
