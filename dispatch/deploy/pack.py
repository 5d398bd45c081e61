"""ESPnet model archives (``espnet2.bin.pack enh``) of trained systems, and their ONNX graphs.

A system is a run folder ``EXP_ROOT/<name>`` (dispatch.results.layout):
  * a KD student: packed from its export (``<name>/export/config.yaml`` + ``model.pth``, written by
    ``dispatch.bin.export_student`` and by stage 7 of the recipes);
  * any other ESPnet enh exp dir (teacher, no-KD student): its ``config.yaml`` and model file.
Without a name, the best KD student (dispatch.results.best, the one rule) is packed.
The pair is loaded strictly before packing, so the archive always loads with stock ESPnet:
``SeparateSpeech.from_pretrained(model_tag=ZIP)`` (needs ``espnet_model_zoo``) or
``dispatch.deploy.loading.load_enhancer(ZIP)``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence

from dispatch.results.best import best_kd_run
from dispatch.results.layout import ExperimentLayout, RunFolder
from dispatch.results.scores import mean_over_test_sets
from dispatch.utils.io import atomic_write_text


def pack_system(system_dir: Path, out_zip: Path, model_file: Optional[str] = None) -> Path:
    """Pack one system with ESPnet's packer after checking that the pair loads strictly."""
    from espnet2.bin.pack import main as espnet_pack

    from dispatch.deploy.loading import load_model_files

    system_dir = Path(system_dir)
    config, weights = RunFolder(system_dir.parent, system_dir.name).existing_model_files(model_file)
    load_model_files(config, weights)  # raises ModelLoadError if stock ESPnet could not load it
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    espnet_pack(["enh", "--train_config", str(config), "--model_file", str(weights),
                 "--outpath", str(out_zip)])
    return out_zip


def _onnx(zip_path: Path, onnx_path: Path) -> Dict:
    """The archive's ONNX graph: its path and error against PyTorch, or why it does not export."""
    from dispatch.deploy.onnx_export import export_model_file

    try:
        report = export_model_file(zip_path, onnx_path)
    except ValueError as exc:  # a model that does not export is a note, not an error
        return {"onnx": None, "onnx_note": str(exc).splitlines()[0]}
    return {"onnx": str(onnx_path), "onnx_max_abs_err": report["max_abs_err"]}


def pack(exp_root: Path, out_dir: Path, system: Optional[str] = None,
         test_sets: Sequence[str] = (), metric: str = "PESQ_WB",
         model_file: Optional[str] = None, onnx: bool = False) -> Dict:
    """Pack ``system`` (or the best scored KD student) into ``out_dir/<system>.zip`` (with
    ``onnx``, also ``<system>.onnx``) and write ``out_dir/<system>.json``; returns that JSON's
    content. FileNotFoundError (one line) when there is nothing to pack."""
    layout, out_dir = ExperimentLayout(exp_root), Path(out_dir)
    info: Dict = {"system": system, "metric": None, "mean_over_test_sets": None,
                  "test_sets": list(test_sets)}
    if system is None:
        if not test_sets:
            raise FileNotFoundError("give --system NAME, or --test_sets to pick the best KD student")
        best = best_kd_run(layout, test_sets, metric)
        if best is None:
            raise FileNotFoundError(f"no scored KD student under {exp_root} (kd_*/scoring_"
                                    "<test_set>/); run the scoring stage first, or pick one with "
                                    "--system")
        system = best.system
        info.update(system=system, metric=best.metric, mean_over_test_sets=best.score)
    elif test_sets:
        score = mean_over_test_sets(layout.run(system), test_sets).get(metric)
        if score is not None:
            info.update(metric=metric, mean_over_test_sets=score)
    zip_path = pack_system(layout.run(system).path, out_dir / f"{system}.zip", model_file)
    info["zip"] = str(zip_path)
    if onnx:
        info.update(_onnx(zip_path, out_dir / f"{system}.onnx"))
    atomic_write_text(out_dir / f"{system}.json", json.dumps(info, indent=2) + "\n")
    return info
