"""dispatch.bin.score: outputs, parallel jobs, and every kind of bad file named with its reason."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dispatch.bin import score
from dispatch.metrics import scoring
from dispatch.metrics.scoring import METRIC_KEYS
from helpers import speech_folder

GOOD = "p232_001"  # the shortest pair (1.7 s)


@pytest.fixture
def vbd() -> Path:
    """Real p232 pairs, else synthetic ones: these tests check behaviour, not values."""
    return speech_folder()


def _scp(path: Path, entries: dict[str, object]) -> Path:
    path.write_text("".join(f"{k} {v}\n" for k, v in entries.items()))
    return path


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as f:
        return {row["utt_id"]: row for row in csv.DictReader(f)}


def _run(tmp_path: Path, ref: dict, inf: dict, *extra: str) -> tuple[dict, dict, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    summary = score.main(["--ref_scp", str(_scp(tmp_path / "ref.scp", ref)), "--inf_scp",
                          str(_scp(tmp_path / "inf.scp", inf)), "--out_dir", str(out),
                          "--dnsmos", "off", "--no_progress", *extra])
    return summary, _read_csv(out / "per_utt.csv"), out


def test_bad_files_are_named_and_the_rest_is_scored(tmp_path: Path, vbd: Path, capsys) -> None:
    clean, fs = sf.read(vbd / "clean" / f"{GOOD}.wav")
    noisy, _ = sf.read(vbd / "noisy" / f"{GOOD}.wav")
    d = tmp_path / "wav"
    d.mkdir()
    sf.write(d / "short.wav", noisy[:-160], fs)
    sf.write(d / "rate.wav", noisy, 8000)
    sf.write(d / "silent.wav", np.zeros_like(clean), fs)
    (d / "garbage.wav").write_bytes(b"RIFF....this is not audio")
    ref = {"a_good": vbd / "clean" / f"{GOOD}.wav", "b_len": vbd / "clean" / f"{GOOD}.wav",
           "c_rate": vbd / "clean" / f"{GOOD}.wav", "d_silent": d / "silent.wav",
           "e_unreadable": vbd / "clean" / f"{GOOD}.wav", "f_missing": d / "nope.wav",
           "g_no_inf": vbd / "clean" / f"{GOOD}.wav"}
    inf = {"a_good": vbd / "noisy" / f"{GOOD}.wav", "b_len": d / "short.wav",
           "c_rate": d / "rate.wav", "d_silent": vbd / "noisy" / f"{GOOD}.wav",
           "e_unreadable": d / "garbage.wav", "f_missing": vbd / "noisy" / f"{GOOD}.wav"}
    summary, rows, out = _run(tmp_path, ref, inf)
    expected = {"b_len": "length mismatch", "c_rate": "sample rate mismatch",
                "d_silent": "silent reference", "e_unreadable": "unreadable file",
                "f_missing": "missing file", "g_no_inf": "missing from inf_scp"}
    err = capsys.readouterr().err
    errors_txt = (out / "errors.txt").read_text()
    for utt, reason in expected.items():
        assert reason in rows[utt]["error"], (utt, rows[utt]["error"])
        assert reason in summary["failed"][utt]
        assert f"{utt}: " in err and reason in err
        assert f"{utt}\t" in errors_txt
        assert all(math.isnan(float(rows[utt][k])) for k in METRIC_KEYS)
    assert rows["a_good"]["error"] == ""
    assert summary["num_scored"] == 1 and summary["num_failed"] == len(expected)
    assert summary["PESQ_WB"] == pytest.approx(float(rows["a_good"]["PESQ_WB"]))
    assert summary["partial"] is False
    assert sorted(p.name for p in out.iterdir()) == ["errors.txt", "per_utt.csv", "summary.json"]


def test_expected_rate_is_checked(tmp_path: Path, vbd: Path) -> None:
    ref = {GOOD: vbd / "clean" / f"{GOOD}.wav"}
    inf = {GOOD: vbd / "noisy" / f"{GOOD}.wav"}
    summary, rows, _ = _run(tmp_path, ref, inf, "--fs", "8000")
    assert "expected 8000 Hz" in rows[GOOD]["error"]
    assert summary["num_scored"] == 0
    assert any("PESQ_WB skipped" in n for n in summary["notes"])


def test_parallel_jobs_give_the_same_scores_and_summary_keys(tmp_path: Path, vbd: Path) -> None:
    utts = ["p232_001", "p232_002"]
    ref = {u: vbd / "clean" / f"{u}.wav" for u in utts}
    inf = {u: vbd / "noisy" / f"{u}.wav" for u in utts}
    _, rows1, _ = _run(tmp_path / "nj1", ref, inf)
    s2, rows2, _ = _run(tmp_path / "nj2", ref, inf, "--nj", "2")
    assert list(rows1) == utts == list(rows2)
    for u in utts:
        for k in METRIC_KEYS:
            assert float(rows1[u][k]) == pytest.approx(float(rows2[u][k]), abs=1e-9)
    for key in ("PESQ_WB", "PESQ_NB", "STOI", "ESTOI", "SI_SNR", "SDR", "CSIG", "CBAK", "COVL"):
        assert isinstance(s2[key], float)
    assert s2["num_scored"] == 2 and s2["num_failed"] == 0
    on_disk = json.loads((tmp_path / "nj2" / "out" / "summary.json").read_text())
    assert on_disk["SI_SNR"] == pytest.approx(s2["SI_SNR"])


def test_kaldi_ark_entries(tmp_path: Path, vbd: Path) -> None:
    kaldiio = pytest.importorskip("kaldiio")
    clean, fs = sf.read(vbd / "clean" / f"{GOOD}.wav", dtype="int16")
    noisy, _ = sf.read(vbd / "noisy" / f"{GOOD}.wav", dtype="int16")
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/ref.ark,{tmp_path}/ark_ref.scp") as w:
        w(GOOD, (fs, clean))
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/inf.ark,{tmp_path}/ark_inf.scp") as w:
        w(GOOD, (fs, noisy))
    def entries(scp: Path) -> dict[str, str]:
        return dict(line.split(maxsplit=1) for line in scp.read_text().splitlines())

    summary, rows, _ = _run(tmp_path, entries(tmp_path / "ark_ref.scp"),
                            entries(tmp_path / "ark_inf.scp"))
    _, rows_wav, _ = _run(tmp_path / "wav", {GOOD: vbd / "clean" / f"{GOOD}.wav"},
                          {GOOD: vbd / "noisy" / f"{GOOD}.wav"})
    assert summary["num_scored"] == 1
    assert float(rows[GOOD]["SI_SNR"]) == pytest.approx(float(rows_wav[GOOD]["SI_SNR"]), abs=1e-6)


def test_failing_metric_keeps_the_others(tmp_path: Path, vbd: Path) -> None:
    clean, fs = sf.read(vbd / "clean" / f"{GOOD}.wav")
    sf.write(tmp_path / "quiet.wav", np.zeros_like(clean), fs)  # PESQ finds no utterance in it
    summary, rows, _ = _run(tmp_path / "run", {GOOD: vbd / "clean" / f"{GOOD}.wav"},
                            {GOOD: tmp_path / "quiet.wav"})
    assert summary["num_scored"] == 1
    assert math.isnan(float(rows[GOOD]["PESQ_WB"])) and "PESQ_WB" in rows[GOOD]["error"]
    assert math.isfinite(float(rows[GOOD]["STOI"]))
    assert "PESQ_WB" in " ".join(summary["metric_failures"][GOOD])


def test_interrupted_run_keeps_what_was_scored(tmp_path: Path, vbd: Path, monkeypatch) -> None:
    real = scoring._work
    calls = []

    def flaky(item):
        calls.append(item[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(item)

    monkeypatch.setattr(scoring, "_work", flaky)
    utts = ["p232_001", "p232_002"]
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, {u: vbd / "clean" / f"{u}.wav" for u in utts},
             {u: vbd / "noisy" / f"{u}.wav" for u in utts})
    out = tmp_path / "out"
    assert list(_read_csv(out / "per_utt.csv")) == ["p232_001"]
    assert json.loads((out / "summary.json").read_text())["partial"] is True
