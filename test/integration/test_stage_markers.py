"""Stage markers: a retrained system's export, inference, scores and model figures are redone; an
unchanged system is not touched again.

The library (``dispatch.utils.stage_marker``) is tested directly; the driver's use of it is tested
by running stages 7-8 of a copy of the mini recipe with the four heavy entry points (export,
inference, scoring, model figures) replaced by a stub ``python3`` first in PATH that records each
call and writes the files those entry points write; everything else (the driver, the markers,
the scp helpers) runs for real, so the test takes seconds.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from helpers import REPO
from dispatch.utils.stage_marker import check, mark
from test_recipe_mini import copy_of_mini, sh

STUB = r'''#!/usr/bin/env bash
# python3 stand-in: record and fake the heavy entry points, run everything else for real
if [ "${1:-}" = -m ]; then
  case "$2" in
    dispatch.bin.export_student|dispatch.bin.enh_inference|dispatch.bin.score|dispatch.bin.model_stats)
      mod=$2; shift 2; declare -A o; pos=()
      while [ $# -gt 0 ]; do case "$1" in --*) o[$1]=${2:-}; shift 2;; *) pos+=("$1"); shift;; esac; done
      case "${mod}" in
        dispatch.bin.export_student) echo "export ${pos[0]}" >> "${STUB_CALLS}"; mkdir -p "${o[--out]}"
          cp "${pos[0]}/${o[--model_file]}" "${o[--out]}/model.pth"; cp "${pos[0]}/config.yaml" "${o[--out]}/config.yaml";;
        dispatch.bin.enh_inference) echo "inference ${o[--model_file]}" >> "${STUB_CALLS}"; mkdir -p "${o[--output_dir]}"
          sed 's| .*| /enhanced.wav|' "${o[--key_file]}" > "${o[--output_dir]}/spk1.scp";;
        dispatch.bin.score) echo "score ${o[--inf_scp]}" >> "${STUB_CALLS}"; mkdir -p "${o[--out_dir]}"
          echo "utt_id,SI_SNR,error" > "${o[--out_dir]}/per_utt.csv";;
        dispatch.bin.model_stats) echo "model_stats ${o[--model_file]}" >> "${STUB_CALLS}"
          echo '{"params_M": 1.0}' > "${o[--out]}";;
      esac
      exit 0;;
  esac
fi
exec REAL_PYTHON "$@"
'''


def test_marker_records_inputs_and_options(tmp_path):
    model, out = tmp_path / "model.pth", tmp_path / "out"
    model.write_bytes(b"one")
    assert check(out, [str(model)]) == (False, "not made yet")
    mark(out, [str(model)], ["--opt 1"])
    assert check(out, [str(model)], ["--opt 1"])[0]
    assert not check(out, [str(model)], ["--opt 2"])[0]
    model.write_bytes(b"two")
    assert "changed" in check(out, [str(model)], ["--opt 1"])[1]
    (out / ".done").write_text("")  # a marker from before markers recorded inputs
    assert "older version" in check(out, [str(model)])[1]
    assert check(out)[0]  # no inputs asked: presence is enough


def _system(recipe: Path, name: str, weights: bytes) -> None:
    d = recipe / "exp" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(f"name: {name}\n")
    (d / "3epoch.pth").write_bytes(weights)
    link = d / "valid.si_snr_loss.best.pth"
    if not link.is_symlink():
        link.symlink_to("3epoch.pth")


def test_driver_redoes_only_what_a_retrained_system_changed(tmp_path):
    recipe = copy_of_mini(tmp_path)
    stub_dir = tmp_path / "stub"
    stub_dir.mkdir()
    (stub_dir / "python3").write_text(STUB.replace("REAL_PYTHON", sys.executable))
    (stub_dir / "python3").chmod(0o755)
    for split in ("test",):
        d = recipe / "dump" / "raw" / split
        d.mkdir(parents=True)
        (d / "wav.scp").write_text("u1 /n1.wav\nu2 /n2.wav\n")
        (d / "spk1.scp").write_text("u1 /c1.wav\nu2 /c2.wav\n")
        (d / ".done").write_text("")
    for name in ("teacher", "student_nokd", "kd_l2_mag"):
        _system(recipe, name, name.encode())
    calls = tmp_path / "calls.txt"
    real_path_sh = (recipe / "path.sh").resolve()
    (recipe / "path.sh").unlink()  # the recipe's path.sh activates the venv; the stub goes in front
    (recipe / "path.sh").write_text(f'. "{real_path_sh}"\nexport PATH="{stub_dir}:${{PATH}}"\n')

    def stages_7_8() -> list:
        calls.write_text("")
        proc = sh(["env", f"STUB_CALLS={calls}", f"PYTHONPATH={REPO}", "./enh_distill.sh", "--stage", "7", "--stop_stage", "8", "--nj", "1",
                   "--kd_configs", "conf/kd/l2_mag.yaml", "--score_opts", "--dnsmos off"], cwd=recipe)
        return sorted(calls.read_text().split("\n")[:-1]), proc.stderr

    first, _ = stages_7_8()
    assert len([c for c in first if c.startswith("inference")]) == 3
    assert len([c for c in first if c.startswith("score")]) == 4  # + noisy
    assert len([c for c in first if c.startswith("model_stats")]) == 3
    assert [c for c in first if c.startswith("export")] == ["export exp/kd_l2_mag"]

    again, _ = stages_7_8()
    assert again == [], again  # nothing changed: nothing is touched, not even export or figures

    _system(recipe, "kd_l2_mag", b"retrained")  # same link name, new weights
    redo, log = stages_7_8()
    assert redo == sorted(["export exp/kd_l2_mag", "inference exp/kd_l2_mag/export/model.pth",
                           "score exp/kd_l2_mag/enhanced_test/spk1.scp",
                           "model_stats exp/kd_l2_mag/export/model.pth"]), redo
    assert "changed since it was made" in log
    shutil.rmtree(stub_dir)
