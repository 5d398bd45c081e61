"""dispatch.bin.make_results on a fake EXP_ROOT: table, Δ with bootstrap CIs, marks, plots, gaps."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from dispatch.bin import make_results as mr
from dispatch.metrics.bootstrap import paired_bootstrap

PUBLISHED = Path(mr.__file__).resolve().parents[1] / "metrics" / "published" / "dns_ins20.yaml"
N = 30
METRICS = ("PESQ_WB", "STOI", "SI_SNR")


def _write_system(root: Path, name: str, scores: dict[str, np.ndarray], stats: dict | None,
                  test_set: str = "test") -> None:
    d = root / name / f"scoring_{test_set}"
    d.mkdir(parents=True)
    with open(d / "per_utt.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["utt_id", *scores, "error"])
        for i in range(N):
            w.writerow([f"utt{i:02d}", *(repr(float(v[i])) for v in scores.values()), ""])
        w.writerow(["utt_bad", *("nan" for _ in scores), "length mismatch: reference 1, estimate 2"])
    summary = {k: float(np.mean(v)) for k, v in scores.items()}
    (d / "summary.json").write_text(json.dumps(summary | {"num_scored": N, "num_failed": 1}))
    if stats is not None:
        (root / name / "model_stats.json").write_text(json.dumps(stats))


@pytest.fixture()
def exp_root(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    root = tmp_path / "recipe" / "exp"
    base = {"PESQ_WB": rng.uniform(2.0, 3.0, N), "STOI": rng.uniform(0.85, 0.95, N),
            "SI_SNR": rng.uniform(10, 15, N)}
    flip = np.where(np.arange(N) % 2 == 0, 1.0, -1.0)  # exactly zero-mean differences
    _write_system(root, "noisy", {k: v - 0.5 for k, v in base.items()}, None)
    _write_system(root, "teacher", {k: v + 0.6 for k, v in base.items()},
                  {"params_M": 7.5, "macs_G_per_s": 3.2, "rtf_cpu_1thread": 0.4})
    _write_system(root, "student_nokd", base,
                  {"params_M": 1.1, "macs_G_per_s": 0.8, "rtf_cpu_1thread": 0.05})
    _write_system(root, "kd_clear", {k: v + 0.3 + 0.01 * rng.standard_normal(N)
                                     for k, v in base.items()},
                  {"params_M": 1.1, "macs_G_per_s": 0.8, "rtf_cpu_1thread": 0.05})
    _write_system(root, "kd_null", {k: v + 0.05 * flip for k, v in base.items()},
                  {"params_M": 1.1, "macs_G_per_s": 0.8, "rtf_cpu_1thread": 0.05})
    return root


def test_bootstrap_interval() -> None:
    a = np.zeros(50)
    d = paired_bootstrap(a, a + 1.0)
    assert (d.mean, d.low, d.high, d.significant) == (1.0, 1.0, 1.0, True)
    flip = np.where(np.arange(50) % 2 == 0, 1.0, -1.0)
    d = paired_bootstrap(a, flip, resamples=500, seed=3)
    assert d.low < 0.0 < d.high and not d.significant
    assert paired_bootstrap(a, flip, resamples=500, seed=3) == d  # fixed seed: reproducible


def test_table_deltas_marks_and_plots(exp_root: Path) -> None:
    result = mr.main([str(exp_root), "--published", str(PUBLISHED), "--resamples", "500"])
    recipe = exp_root.parent
    md = (recipe / "RESULTS.md").read_text()
    lines = md.splitlines()
    header = next(ln for ln in lines if ln.startswith("| system | params"))
    for col in ("params (M)", "MACs/s (G)", "RTF (CPU, 1 thread)", *METRICS, "SDR", "utts"):
        assert col in header
    rows = [ln.split(" | ")[0].lstrip("| ") for ln in lines if ln.startswith("| ")]
    table = rows[1:rows.index("system", 1)]
    assert table[:5] == ["noisy", "teacher", "student_nokd", "kd_clear", "kd_null"]
    assert "ESPnet DCCRN †" in table and "ESPnet TF-GridNet †" in table
    assert "ESPnet egs2/dns_ins20/enh1/README.md" in md
    assert "| teacher | 7.50 | 3.20 | 0.400 |" in md
    assert "30 (1 failed)" in md

    delta_line = {ln.split(" | ")[0].lstrip("| "): ln for ln in lines if ln.startswith("| kd_")
                  and "[" in ln}
    clear = delta_line["kd_clear"].split(" | ")[1:4]
    null = delta_line["kd_null"].split(" | ")[1:4]
    assert all(cell.endswith("]*") and cell.startswith("+0.3") for cell in clear), clear
    assert all(not cell.endswith("*") for cell in null), null
    deltas = result["test_sets"]["test"]["deltas"]
    assert deltas["kd_clear"]["PESQ_WB"]["significant"] is True
    assert deltas["kd_null"]["PESQ_WB"]["low"] < 0 < deltas["kd_null"]["PESQ_WB"]["high"]
    assert deltas["kd_clear"]["SI_SNR"]["n"] == N

    for png in ("results_test_gains.png", "results_test_scatter.png"):
        assert (recipe / png).read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in md
    with open(recipe / "results.csv", newline="") as f:
        csv_rows = {r["system"]: r for r in csv.DictReader(f)}
    assert float(csv_rows["kd_clear"]["delta_PESQ_WB"]) == pytest.approx(0.3, abs=0.01)
    assert csv_rows["kd_clear"]["delta_PESQ_WB_significant"] == "True"
    assert json.loads((recipe / "results.json").read_text())["bootstrap"]["resamples"] == 500
    assert not [p for p in recipe.iterdir() if p.name.endswith(".tmp")]


def test_missing_system_still_gives_a_table(exp_root: Path, tmp_path: Path, capsys) -> None:
    import shutil

    shutil.rmtree(exp_root / "teacher")
    (exp_root / "kd_null" / "scoring_test" / "per_utt.csv").unlink()  # summary.json only
    out = tmp_path / "out"
    mr.main([str(exp_root), "--out_dir", str(out), "--resamples", "200"])
    md = (out / "RESULTS.md").read_text()
    teacher = next(ln for ln in md.splitlines() if ln.startswith("| teacher |"))
    assert teacher.count("—") >= 6
    assert "teacher: no system folder" in md
    assert "kd_null/test: no per_utt.csv" in md
    kd_null = next(ln for ln in md.splitlines() if ln.startswith("| kd_null |") and "—" in ln
                   and "[" not in ln and ln.count("|") < 8)
    assert kd_null
    err = capsys.readouterr().err
    assert "warning: teacher: no system folder" in err


def test_missing_nokd_and_empty_root(tmp_path: Path) -> None:
    out = tmp_path / "out"
    mr.main([str(tmp_path / "nothing_here"), "--out_dir", str(out), "--test_sets", "tt"])
    md = (out / "RESULTS.md").read_text()
    for name in ("noisy", "teacher", "student_nokd"):
        assert f"| {name} |" in md
