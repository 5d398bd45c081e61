"""Agreement tests: PESQ known answer; STOI/ESTOI/SI-SNR/SDR against pystoi and espnet's enh_scoring."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dispatch.metrics import intrusive
from helpers import SHARED_DATA

DATA = SHARED_DATA  # $DISPATCH_TEST_DATA (helpers)
KNOWN = DATA / "pesq_known_answer"
VBD = DATA / "vbd_test_p232"
UTTS = ["p232_001", "p232_002", "p232_005"]  # 1.7 s, 2.7 s, 6.2 s; SNR 15.5, 11.3, 1.9 dB

needs_known = pytest.mark.skipif(not KNOWN.is_dir(), reason=f"{KNOWN} is absent")
needs_vbd = pytest.mark.skipif(not VBD.is_dir(), reason=f"{VBD} is absent")


def _pair(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    ref, fs = sf.read(folder / "clean" / f"{name}.wav")
    est, fs2 = sf.read(folder / "noisy" / f"{name}.wav")
    assert fs == fs2
    return ref, est, fs


@needs_known
def test_pesq_known_answer() -> None:
    ref, est, fs = _pair(KNOWN, "speech")
    assert intrusive.pesq_wb(ref, est, fs) == pytest.approx(1.0832337141036987, abs=1e-9)
    assert intrusive.pesq_nb(ref, est, fs) == pytest.approx(1.6072081327438354, abs=1e-9)


def test_pesq_needs_supported_rate() -> None:
    x = np.random.default_rng(0).standard_normal(22050)
    with pytest.raises(intrusive.MetricUnavailable, match="16000"):
        intrusive.pesq_wb(x, x, 22050)
    with pytest.raises(intrusive.MetricUnavailable, match="8000 or 16000"):
        intrusive.pesq_nb(x, x, 22050)


def test_si_snr_definition() -> None:
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(16000)
    noise = rng.standard_normal(16000)
    noise -= noise.mean() + (np.dot(noise - noise.mean(), ref - ref.mean())
                             / np.dot(ref - ref.mean(), ref - ref.mean())) * (ref - ref.mean())
    est = 3.0 * ref + 0.5 + noise * 0.3  # scale and offset must not matter
    expected = 10 * np.log10(np.sum((3.0 * (ref - ref.mean())) ** 2) / np.sum((0.3 * noise) ** 2))
    assert intrusive.si_snr(ref, est) == pytest.approx(expected, abs=1e-6)


@needs_vbd
def test_stoi_estoi_match_pystoi() -> None:
    from pystoi import stoi

    for utt in UTTS[:2]:
        ref, est, fs = _pair(VBD, utt)
        assert intrusive.stoi(ref, est, fs) == pytest.approx(stoi(ref, est, fs), abs=1e-3)
        assert intrusive.estoi(ref, est, fs) == pytest.approx(stoi(ref, est, fs, True), abs=1e-3)


@needs_vbd
def test_agrees_with_espnet_enh_scoring(tmp_path: Path) -> None:
    """Run espnet2.bin.enh_scoring on tiny scp files and compare every shared metric (1e-3)."""
    enh_scoring = pytest.importorskip("espnet2.bin.enh_scoring")
    ref_scp, inf_scp = tmp_path / "ref.scp", tmp_path / "inf.scp"
    ref_scp.write_text("".join(f"{u} {VBD / 'clean' / (u + '.wav')}\n" for u in UTTS))
    inf_scp.write_text("".join(f"{u} {VBD / 'noisy' / (u + '.wav')}\n" for u in UTTS))
    out = tmp_path / "espnet"
    enh_scoring.main(["--output_dir", str(out), "--ref_scp", str(ref_scp), "--inf_scp",
                      str(inf_scp), "--key_file", str(ref_scp)])

    def read(name: str) -> dict[str, float]:
        lines = (out / f"{name}_spk1").read_text().split("\n")
        return {k: float(v) for k, v in (ln.split() for ln in lines if ln.strip())}

    theirs = {"STOI": read("STOI"), "ESTOI": read("ESTOI"), "SI_SNR": read("SI_SNR"),
              "SDR": read("SDR")}
    ours_fn = {"STOI": intrusive.stoi, "ESTOI": intrusive.estoi, "SI_SNR": intrusive.si_snr,
               "SDR": intrusive.sdr}
    scale = {"STOI": 100.0, "ESTOI": 100.0}  # espnet writes STOI/ESTOI in percent
    for utt in UTTS:
        ref, est, fs = _pair(VBD, utt)
        for key, fn in ours_fn.items():
            ours = fn(ref, est, fs)
            assert ours == pytest.approx(theirs[key][utt] / scale.get(key, 1.0), abs=1e-3), (utt, key)
