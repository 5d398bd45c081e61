"""make_results never trusts partial work, and calls nothing significant below 10 matched utterances."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

import dispatch.bin.make_results as mr
from dispatch.metrics.bootstrap import MIN_SIGNIFICANT_N, paired_bootstrap
from dispatch.metrics.completeness import scoring_problems


def write_scoring(root: Path, name: str, pesq: np.ndarray, ref_scp: str = "", **summary) -> Path:
    d = root / name / "scoring_test"
    d.mkdir(parents=True)
    with open(d / "per_utt.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["utt_id", "PESQ_WB", "error"])
        for i, v in enumerate(pesq):
            w.writerow([f"utt{i:02d}", repr(float(v)), ""])
    info = {"PESQ_WB": float(np.mean(pesq)), "num_utts": len(pesq), "num_scored": len(pesq),
            "num_failed": 0, "partial": False, "ref_scp": ref_scp}
    (d / "summary.json").write_text(json.dumps(info | summary))
    return d


def recipe(tmp_path: Path, n: int, n_test: int) -> Path:
    """A recipe folder whose test set has ``n_test`` utterances and systems scored on ``n``."""
    root = tmp_path / "recipe" / "exp"
    scp = tmp_path / "recipe" / "dump" / "raw" / "test" / "spk1.scp"
    scp.parent.mkdir(parents=True)
    scp.write_text("".join(f"utt{i:02d} /x/{i}.wav\n" for i in range(n_test)))
    base = np.random.default_rng(0).uniform(2.0, 3.0, n)
    for name, scores in (("noisy", base - 0.5), ("teacher", base + 0.6), ("student_nokd", base),
                         ("kd_good", base + 0.3)):
        write_scoring(root, name, scores, ref_scp="dump/raw/test/spk1.scp")
    return root


def test_partial_malformed_and_short_scorings_are_left_out(tmp_path):
    root = recipe(tmp_path, 30, 30)
    pesq = np.full(30, 3.5)
    write_scoring(root, "kd_partial", pesq[:21], ref_scp="dump/raw/test/spk1.scp", partial=True)
    write_scoring(root, "kd_short", pesq[:21], ref_scp="dump/raw/test/spk1.scp")
    cut = write_scoring(root, "kd_cut", pesq, ref_scp="dump/raw/test/spk1.scp")
    text = (cut / "per_utt.csv").read_text()
    (cut / "per_utt.csv").write_text(text[: text.rindex(",")])  # the last row cut short

    assert scoring_problems(root / "kd_good" / "scoring_test", [root.parent]) == []
    assert "partial" in scoring_problems(root / "kd_partial" / "scoring_test", [root.parent])[0]
    assert scoring_problems(root / "kd_short" / "scoring_test", [root.parent]) == [
        "covers 21 of the 30 test utterances"]
    assert "malformed" in scoring_problems(cut, [root.parent])[0]

    result = mr.main([str(root), "--resamples", "200"])
    md = (root.parent / "RESULTS.md").read_text()
    rows: dict = {}
    for ln in md.splitlines():  # the first table: one row per system
        if ln.startswith("| kd_"):
            rows.setdefault(ln.split(" | ")[0].lstrip("| "), ln)
    for name, why in (("kd_partial", "partial scoring"), ("kd_short", "covers 21 of the 30"),
                      ("kd_cut", "per_utt.csv is malformed")):
        assert f"left out: {why}" in rows[name], rows[name]
        assert "3.50" not in rows[name]  # no mean from the untrusted file
        assert any(name in w and "left out" in w for w in result["warnings"])
    assert "left out" not in rows["kd_good"]


def test_small_n_is_never_significant(tmp_path):
    a = np.zeros(MIN_SIGNIFICANT_N - 1)
    assert not paired_bootstrap(a, a + 1.0).significant
    assert paired_bootstrap(np.zeros(MIN_SIGNIFICANT_N), np.ones(MIN_SIGNIFICANT_N)).significant

    root = recipe(tmp_path, 2, 2)
    result = mr.main([str(root), "--resamples", "200"])
    md = (root.parent / "RESULTS.md").read_text()
    delta = next(ln for ln in md.splitlines() if ln.startswith("| kd_good") and "[" in ln)
    assert "*" not in delta, delta
    assert result["test_sets"]["test"]["deltas"]["kd_good"]["PESQ_WB"]["significant"] is False
    assert f"Fewer than {MIN_SIGNIFICANT_N} matched utterances" in md
