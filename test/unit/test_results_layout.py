"""dispatch.results.layout and the driver's questions (dispatch.bin.query); the one best-KD rule."""
from __future__ import annotations

import math
from pathlib import Path

from dispatch.bin import query
from dispatch.results.best import best_kd
from dispatch.results.layout import ExperimentLayout
from helpers import REPO


def test_layout_lists_systems_and_their_model_files(tmp_path: Path, capsys) -> None:
    exp = tmp_path / "exp"
    for folder in ("teacher", "student_nokd_seed0", "student_nokd_seed1", "kd_a_seed0", "kd_a_seed1",
                   "kd_b__kd_weight10", "by_hand"):
        (exp / folder).mkdir(parents=True)
    (exp / "by_hand" / "config.yaml").write_text("kd_loss: l2_mag\n")
    layout = ExperimentLayout(exp)
    assert layout.systems() == ["noisy", "teacher", "student_nokd", "kd_a", "kd_b__kd_weight10"]
    assert layout.kd_folders() == ["kd_a_seed0", "kd_a_seed1", "kd_b__kd_weight10"]
    assert list(layout.runs("student_nokd")) == [0, 1]
    assert layout.run("by_hand").is_kd_student() and not layout.run("teacher").is_kd_student()

    query.main(["files", str(exp), "teacher", "--inference_model", "s.pth", "--teacher_model", "t.pth"])
    query.main(["files", str(exp), "kd_a_seed1", "--inference_model", "s.pth", "--teacher_model", "t.pth"])
    teacher, kd = (line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert teacher == [str(exp / "teacher" / f) for f in ("config.yaml", "t.pth", "config.yaml", "t.pth")]
    assert kd == [str(exp / "kd_a_seed1" / f)
                  for f in ("config.yaml", "s.pth", "export/config.yaml", "export/model.pth")]


def test_teacher_cache_is_refused_only_for_feature_kd(capsys) -> None:
    kd = REPO / "egs" / "mini" / "enh_distill1" / "conf" / "kd"
    for overlay in ("l2_mag", "mssp_dfkd", "atkl"):
        query.main(["teacher_cache", str(kd / f"{overlay}.yaml")])
    assert capsys.readouterr().out.split() == ["true", "true", "false"]


def test_best_kd_falls_back_to_si_snr() -> None:
    means = {"kd_b": {"PESQ_WB": 2.1, "SI_SNR": 9.0}, "kd_a": {"PESQ_WB": 2.3, "SI_SNR": 8.0},
             "kd_c": {"PESQ_WB": math.nan, "SI_SNR": 12.0}}
    assert best_kd(means).system == "kd_a"
    pick = best_kd(means, "CSIG")
    assert (pick.system, pick.metric, pick.score) == ("kd_c", "SI_SNR", 12.0)
    assert best_kd({"kd_x": {}}) is None
