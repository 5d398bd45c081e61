"""Systems trained on several seeds in RESULTS: grouping, mean ± std, the two-level bootstrap."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dispatch.bin import make_results as mr
from dispatch.metrics.bootstrap import paired_bootstrap
from dispatch.metrics.seeds import mean_and_spread, seed_bootstrap
from dispatch.results.layout import seed_folders, split_seed, system_of_folders

from test_results import N, _write_system  # N utterances (+ one failed) per run

STATS = {"params_M": 1.1, "macs_G_per_s": 0.8, "rtf_cpu_1thread": 0.05}


def _write_run(root: Path, folder: str, si_snr: np.ndarray, stats: dict | None = STATS) -> None:
    _write_system(root, folder, {"SI_SNR": si_snr, "STOI": 0.8 + 0.001 * si_snr}, stats)


@pytest.fixture()
def seeded_root(tmp_path: Path) -> Path:
    """nokd and kd_gain on seeds 0-2 (kd_gain = nokd + 0.5 + seed noise); kd_solo as one plain run."""
    rng = np.random.default_rng(1)
    root = tmp_path / "recipe" / "exp"
    utt = rng.uniform(5, 15, N)  # utterance difficulty, shared by every run
    _write_run(root, "noisy", utt - 4, None)
    _write_run(root, "teacher", utt + 2)
    for s in range(3):
        run = utt + 0.3 * rng.standard_normal() + 0.05 * rng.standard_normal(N)
        _write_run(root, f"student_nokd_seed{s}", run)
        _write_run(root, f"kd_gain__kd_weight10_seed{s}", run + 0.5 + 0.02 * rng.standard_normal(N))
    _write_run(root, "kd_solo", utt + 0.1 * rng.standard_normal(N))
    return root


def test_seed_folder_names(tmp_path: Path) -> None:
    assert split_seed("kd_mssp_dfkd__kd_weight10_k0.5_seed12") == ("kd_mssp_dfkd__kd_weight10_k0.5", 12)
    assert split_seed("student_nokd") == ("student_nokd", None)
    assert system_of_folders(["kd_a_seed0", "kd_a_seed1", "kd_b", "kd_a_seedx"]) == [
        "kd_a", "kd_a_seedx", "kd_b"]
    for name in ("student_nokd", "student_nokd_seed2", "student_nokd_seed10", "student_nokd_x_seed1"):
        (tmp_path / name).mkdir()
    assert seed_folders(tmp_path, "student_nokd") == {2: "student_nokd_seed2", 10: "student_nokd_seed10"}
    assert seed_folders(tmp_path, "student_nokd_x") == {1: "student_nokd_x_seed1"}
    assert seed_folders(tmp_path, "kd_none") == {None: "kd_none"}


def test_mean_and_spread() -> None:
    assert mean_and_spread([1.0, 2.0, 3.0]) == (2.0, 1.0)  # sample std, ddof 1
    mean, sd = mean_and_spread([4.0, float("nan")])
    assert mean == 4.0 and np.isnan(sd)


def test_two_level_bootstrap_counts_seed_variance() -> None:
    rng = np.random.default_rng(0)
    utts = [f"u{i}" for i in range(40)]
    base = {s: dict(zip(utts, rng.normal(10, 2, 40))) for s in range(3)}
    # the KD runs gain +1, +0 and -1 dB by seed: a per-utterance bootstrap of one seed would be sure
    other = {s: {u: v + (1 - s) + 0.01 * rng.standard_normal() for u, v in base[s].items()}
             for s in range(3)}
    d = seed_bootstrap(base, other, resamples=1000)
    assert d.mean == pytest.approx(0.0, abs=0.02) and d.seeds == 3 and d.paired and d.n == 40
    assert d.low < -0.3 and d.high > 0.3 and not d.significant
    one = paired_bootstrap(np.array(list(base[0].values())), np.array(list(other[0].values())))
    assert one.significant and one.mean == pytest.approx(1.0, abs=0.02)
    assert seed_bootstrap(base, other, resamples=1000) == d  # fixed seed: reproducible
    # a consistent gain over seeds is significant, and pairing by seed is what removes seed noise
    steady = {s: {u: v + 0.5 for u, v in base[s].items()} for s in range(3)}
    d = seed_bootstrap(base, steady, resamples=500)
    assert (d.mean, d.low, d.high) == pytest.approx((0.5, 0.5, 0.5))
    unpaired = seed_bootstrap({None: base[0]}, steady, resamples=500)
    assert not unpaired.paired and unpaired.high - unpaired.low > 0.0


def test_seeded_results_table(seeded_root: Path) -> None:
    result = mr.main([str(seeded_root), "--resamples", "400"])
    md = (seeded_root.parent / "RESULTS.md").read_text()
    lines = md.splitlines()
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in lines if ln.startswith("| ")}
    assert "student_nokd_seed0" not in md and "kd_gain__kd_weight10_seed1" not in md
    nokd = next(ln for ln in lines if ln.startswith("| student_nokd |"))
    assert " ± " in nokd and f"{3 * N} (3 failed) over 3 seeds" in nokd
    assert "±" not in rows["teacher"] and "±" not in rows["kd_solo"]
    assert "sample standard deviation across seeds" in md
    assert "two-level paired-bootstrap" in md and "then resamples the utterances" in md

    deltas = result["test_sets"]["test"]["deltas"]
    gain = deltas["kd_gain__kd_weight10"]["SI_SNR"]
    assert gain["mean"] == pytest.approx(0.5, abs=0.05) and gain["significant"] is True
    assert gain["seeds"] == 3 and gain["paired"] is True and gain["n"] == N
    solo = deltas["kd_solo"]["SI_SNR"]
    assert solo["paired"] is False and (solo["seeds"], solo["base_seeds"]) == (1, 3)
    assert "| kd_solo |" in md and f"| {N}, 1 vs 3 seeds, unpaired |" in md
    delta_rows = [ln for ln in lines if ln.startswith("| kd_gain__kd_weight10 |") and "[" in ln]
    assert delta_rows and delta_rows[0].endswith(f"| {N} × 3 seed pairs |")

    # the means are the mean over seeds of each seed's mean
    seed_means = [json.loads((seeded_root / f"student_nokd_seed{s}" / "scoring_test" / "summary.json")
                             .read_text())["SI_SNR"] for s in range(3)]
    with open(seeded_root.parent / "results.csv", newline="") as f:
        csv_rows = {r["system"]: r for r in csv.DictReader(f)}
    assert float(csv_rows["student_nokd"]["SI_SNR"]) == pytest.approx(np.mean(seed_means))
    assert float(csv_rows["student_nokd"]["SI_SNR_seed_std"]) == pytest.approx(np.std(seed_means, ddof=1))
    assert csv_rows["student_nokd"]["seeds"] == "0 1 2"


def test_one_seed_gives_the_plain_table(seeded_root: Path, tmp_path: Path) -> None:
    """A single ``_seed0`` run per system reads exactly like the same run without the suffix."""
    for name in ("student_nokd_seed1", "student_nokd_seed2", "kd_gain__kd_weight10_seed1",
                 "kd_gain__kd_weight10_seed2", "kd_solo"):
        shutil.rmtree(seeded_root / name)
    plain = tmp_path / "plain" / "exp"
    shutil.copytree(seeded_root, plain)
    for name in ("student_nokd", "kd_gain__kd_weight10"):
        (plain / f"{name}_seed0").rename(plain / name)
    mr.main([str(seeded_root), "--resamples", "300"])
    mr.main([str(plain), "--resamples", "300"])
    seeded_md = (seeded_root.parent / "RESULTS.md").read_text().split("\n", 3)[3]
    plain_md = (plain.parent / "RESULTS.md").read_text().split("\n", 3)[3]
    assert "±" not in seeded_md and "seed pairs" not in seeded_md
    assert seeded_md.replace("_seed0", "") == plain_md
