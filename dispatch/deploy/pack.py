"""ESPnet model archives (``espnet2.bin.pack enh``) of trained systems.

A system is a folder ``EXP_ROOT/<name>``:
  * a KD student (its ``config.yaml`` holds the KD options): packed from its export
    (``<name>/export/config.yaml`` + ``model.pth``, written by ``dispatch.bin.export_student``
    and by stage 7 of the recipes);
  * any other ESPnet enh exp dir (teacher, no-KD student): its ``config.yaml`` and model file.
The pair is loaded strictly before packing, so the archive always loads with stock ESPnet:
``SeparateSpeech.from_pretrained(model_tag=ZIP)`` (needs ``espnet_model_zoo``) or
``dispatch.deploy.loading.load_enhancer(ZIP)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import yaml

from dispatch.utils.io import atomic_write_text

#: Model files tried, in order, for a system that is not a KD student.
MODEL_FILES = ("valid.si_snr_loss.best.pth", "valid.loss.best.pth", "latest.pth", "model.pth")


def system_score(system_dir: Path, test_sets: Sequence[str], metric: str) -> Optional[float]:
    """Mean of ``metric`` over the test sets' ``scoring_<set>/summary.json`` (None if missing)."""
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


def best_student(exp_root: Path, test_sets: Sequence[str], metric: str) -> Tuple[str, str, float]:
    """(system, metric used, score) of the best scored ``kd_*`` system (SI_SNR as fallback)."""
    for name in (metric, "SI_SNR"):
        scores: Dict[str, float] = {}
        for system_dir in sorted(Path(exp_root).glob("kd_*")):
            score = system_score(system_dir, test_sets, name)
            if score is not None:
                scores[system_dir.name] = score
        if scores:
            best = max(scores, key=scores.get)
            return best, name, scores[best]
    raise FileNotFoundError(f"no scored KD student under {exp_root} (kd_*/scoring_<test_set>/"
                            "summary.json); run the scoring stage first, or pick one with --system")


def system_files(system_dir: Path, model_file: Optional[str] = None) -> Tuple[Path, Path]:
    """(config.yaml, weights) that stock ESPnet loads for a system folder."""
    from dispatch.tasks.enh_distill import DISTILL_OPTIONS

    system_dir = Path(system_dir)
    config = system_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"'{config}' does not exist: '{system_dir.name}' is not a trained "
                                f"system; list {system_dir.parent} for the systems")
    options = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    if any(k in options for k in DISTILL_OPTIONS):  # a KD student: only its export is stock
        export = system_dir / "export"
        if not (export / "model.pth").is_file():
            raise FileNotFoundError(f"'{export}/model.pth' is missing; export the student first: "
                                    f"python -m dispatch.bin.export_student {system_dir} "
                                    f"--out {export}")
        return export / "config.yaml", export / "model.pth"
    names = [model_file] if model_file else list(MODEL_FILES)
    for name in names:
        if (system_dir / name).is_file():
            return config, system_dir / name
    raise FileNotFoundError(f"no model file in '{system_dir}' (looked for {', '.join(names)}); "
                            "name one with --model_file")


def pack_system(system_dir: Path, out_zip: Path, model_file: Optional[str] = None) -> Path:
    """Pack one system with ESPnet's packer after checking that the pair loads strictly."""
    from espnet2.bin.pack import main as espnet_pack

    from dispatch.deploy.loading import load_model_files

    config, weights = system_files(system_dir, model_file)
    load_model_files(config, weights)  # raises ModelLoadError if stock ESPnet could not load it
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    espnet_pack(["enh", "--train_config", str(config), "--model_file", str(weights),
                 "--outpath", str(out_zip)])
    return out_zip


def pack(exp_root: Path, out_dir: Path, system: Optional[str] = None,
         test_sets: Sequence[str] = (), metric: str = "PESQ_WB",
         model_file: Optional[str] = None) -> Dict:
    """Pack ``system`` (or the best scored KD student) into ``out_dir/<system>.zip`` and write
    ``out_dir/<system>.json``; returns that JSON's content."""
    exp_root, out_dir = Path(exp_root), Path(out_dir)
    info: Dict = {"system": system, "metric": None, "mean_over_test_sets": None,
                  "test_sets": list(test_sets)}
    if system is None:
        if not test_sets:
            raise FileNotFoundError("give --system NAME, or --test_sets to pick the best KD student")
        system, used, score = best_student(exp_root, test_sets, metric)
        info.update(system=system, metric=used, mean_over_test_sets=score)
    elif test_sets and system_score(exp_root / system, test_sets, metric) is not None:
        info.update(metric=metric, mean_over_test_sets=system_score(exp_root / system, test_sets,
                                                                    metric))
    zip_path = pack_system(exp_root / system, out_dir / f"{system}.zip", model_file)
    info["zip"] = str(zip_path)
    atomic_write_text(out_dir / f"{system}.json", json.dumps(info, indent=2) + "\n")
    return info

