#!/usr/bin/env python3
"""Stage 10: pack the best KD student for deployment, as an ESPnet model archive.

    python -m dispatch.bin.pack_student EXP_ROOT --test_sets test [--metric PESQ_WB] --out DIR

Picks the ``kd_*`` system with the highest mean ``--metric`` over the test sets (SI_SNR when the
metric is missing), and writes ``DIR/<system>.zip`` with ESPnet's own packer
(``espnet2.bin.pack enh``) from the student's export (``EXP_ROOT/<system>/export``) plus
``DIR/<system>.json`` with its scores. Unpack with ``espnet2.bin.enh_inference --model_tag``-style
tools or simply unzip: it holds ``config.yaml`` and ``model.pth``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from dispatch.utils.io import atomic_write_text


def system_score(system_dir: Path, test_sets: List[str], metric: str) -> Optional[float]:
    values = []
    for test_set in test_sets:
        summary = system_dir / f"scoring_{test_set}" / "summary.json"
        if not summary.is_file():
            return None
        value = json.loads(summary.read_text()).get(metric)
        if value is None:
            return None
        values.append(float(value))
    return sum(values) / len(values) if values else None


def best_student(exp_root: Path, test_sets: List[str], metric: str) -> Tuple[str, str, float]:
    for name in (metric, "SI_SNR"):
        scores: Dict[str, float] = {}
        for system_dir in sorted(exp_root.glob("kd_*")):
            score = system_score(system_dir, test_sets, name)
            if score is not None:
                scores[system_dir.name] = score
        if scores:
            best = max(scores, key=scores.get)
            return best, name, scores[best]
    raise FileNotFoundError(f"no scored KD student under {exp_root} (kd_*/scoring_<test_set>/"
                            "summary.json); run the scoring stage first")


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exp_root", type=Path, help="the recipe's exp dir (kd_*/ systems inside)")
    parser.add_argument("--test_sets", nargs="+", required=True,
                        help="test sets whose mean score picks the best KD student")
    parser.add_argument("--metric", default="PESQ_WB",
                        help="the metric to maximise (SI_SNR when a system lacks it)")
    parser.add_argument("--out", type=Path, required=True, help="where the .zip and .json go")
    args = parser.parse_args(cmd)
    try:
        system, metric, score = best_student(args.exp_root, args.test_sets, args.metric)
        export = args.exp_root / system / "export"
        if not (export / "model.pth").is_file():
            raise FileNotFoundError(f"'{export}/model.pth' is missing; run the inference stage, "
                                    "which exports every KD student")
    except FileNotFoundError as exc:
        print(f"pack_student: error: {exc}", file=sys.stderr)
        sys.exit(2)
    from espnet2.bin.pack import main as espnet_pack

    args.out.mkdir(parents=True, exist_ok=True)
    espnet_pack(["enh", "--train_config", str(export / "config.yaml"),
                 "--model_file", str(export / "model.pth"),
                 "--outpath", str(args.out / f"{system}.zip")])
    atomic_write_text(args.out / f"{system}.json", json.dumps(
        {"system": system, "metric": metric, "mean_over_test_sets": score,
         "test_sets": args.test_sets}, indent=2) + "\n")
    print(f"pack_student: packed {system} ({metric} {score:.3f}) into {args.out / (system + '.zip')}")


if __name__ == "__main__":
    main()
