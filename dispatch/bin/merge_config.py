#!/usr/bin/env python3
"""Merge a student training config with a KD overlay into one ESPnet config.

    python -m dispatch.bin.merge_config STUDENT.yaml KD.yaml --out OUT.yaml

The overlay may hold only the KD options (``kd_loss``, ``kd_loss_conf``, ``kd_weight``); any other
key is an error, so an overlay can never silently change the student it is compared against.
One key may name another student openly: ``student_config: conf/student_causal.yaml`` trains this
KD student from that config instead of STUDENT.yaml (e.g. a causal student distilled from the
usual teacher). A relative path is looked up in the current dir (the recipe folder), then in the
overlay's folder and its parents.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import yaml

from dispatch.utils.io import atomic_write_text

KD_KEYS = ("kd_loss", "kd_loss_conf", "kd_weight")


STUDENT_KEY = "student_config"


def resolve_student_config(name: str, overlay_name: str) -> Path:
    """The file an overlay's ``student_config`` names (module docstring for the search order)."""
    path = Path(name)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path] + [
        folder / path for folder in Path(overlay_name).resolve().parents]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{overlay_name}: student_config '{name}' not found (relative paths "
                            "are looked up from the recipe folder)")


def merge_config(student: dict, overlay: dict, overlay_name: str = "overlay") -> dict:
    if STUDENT_KEY in overlay:  # this KD student openly uses another student config
        overlay = dict(overlay)
        student = load_yaml(resolve_student_config(str(overlay.pop(STUDENT_KEY)), overlay_name))
    extra = sorted(set(overlay) - set(KD_KEYS))
    if extra:
        raise ValueError(f"{overlay_name} has non-KD keys {', '.join(extra)}; a KD config may only "
                         f"set {', '.join(KD_KEYS)} and {STUDENT_KEY} (put model/training "
                         "options in the student config)")
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
