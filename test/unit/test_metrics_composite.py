"""Composite measures (Hu & Loizou 2008): they behave on real noisy/clean pairs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dispatch.metrics import composite as C
from helpers import SHARED_DATA

VBD = SHARED_DATA / "vbd_test_p232"  # $DISPATCH_TEST_DATA (helpers)
needs_vbd = pytest.mark.skipif(not VBD.is_dir(), reason=f"{VBD} is absent")


def _pair(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    ref, fs = sf.read(VBD / "clean" / f"{name}.wav")
    est, _ = sf.read(VBD / "noisy" / f"{name}.wav")
    return ref, est, fs


@needs_vbd
def test_clean_against_itself_is_the_maximum() -> None:
    ref, _, fs = _pair("p232_001")
    s = C.composite(ref, ref, fs)
    assert (s.CSIG, s.CBAK, s.COVL) == (5.0, 5.0, 5.0)
    assert s.LLR == pytest.approx(0.0, abs=1e-9)
    assert s.WSS == pytest.approx(0.0, abs=1e-9)
    assert s.SEG_SNR == C.SEGSNR_MAX_DB


@needs_vbd
def test_noisy_scores_lower_and_worse_snr_scores_lowest() -> None:
    by_snr = {}
    for utt in ("p232_001", "p232_005"):  # 15.5 dB and 1.9 dB
        ref, est, fs = _pair(utt)
        s = C.composite(ref, est, fs)
        for v in (s.CSIG, s.CBAK, s.COVL):
            assert 1.0 <= v < 5.0
        assert s.LLR > 0 and s.WSS > 0 and s.SEG_SNR < C.SEGSNR_MAX_DB
        by_snr[utt] = s
    hi, lo = by_snr["p232_001"], by_snr["p232_005"]
    assert lo.CSIG < hi.CSIG and lo.CBAK < hi.CBAK and lo.COVL < hi.COVL
    # more noise added to the same utterance lowers every composite score
    ref, est, fs = _pair("p232_001")
    worse = C.composite(ref, ref + 3.0 * (est - ref), fs)
    assert worse.CSIG < hi.CSIG and worse.CBAK < hi.CBAK and worse.COVL < hi.COVL


def test_regression_formulas_and_clipping() -> None:
    """With a given PESQ, the published regressions reproduce from the components."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    ref = np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    est = ref + 0.3 * rng.standard_normal(ref.size)
    s = C.composite(ref, est, 16000, pesq_score=2.0)
    csig = 3.093 - 1.029 * s.LLR + 0.603 * 2.0 - 0.009 * s.WSS
    cbak = 1.634 + 0.478 * 2.0 - 0.007 * s.WSS + 0.063 * s.SEG_SNR
    covl = 1.594 + 0.805 * 2.0 - 0.512 * s.LLR - 0.007 * s.WSS
    assert s.CSIG == pytest.approx(min(5, max(1, csig)))
    assert s.CBAK == pytest.approx(min(5, max(1, cbak)))
    assert s.COVL == pytest.approx(min(5, max(1, covl)))
    assert 0.0 <= s.LLR <= 2.0
    low = C.composite(ref, rng.standard_normal(ref.size), 16000, pesq_score=-0.5)
    assert (low.CSIG, low.CBAK, low.COVL) == (1.0, 1.0, 1.0)


def test_nb_raw_inverts_p862_1_mapping() -> None:
    for raw in (1.0, 2.5, 3.29, 4.2):
        mos = 0.999 + 4.0 / (1.0 + np.exp(-1.4945 * raw + 4.6607))
        assert C.nb_mos_lqo_to_raw(float(mos)) == pytest.approx(raw, abs=1e-6)


def test_too_short_and_mismatched_inputs_raise() -> None:
    with pytest.raises(ValueError, match="shorter"):
        C.composite(np.ones(100), np.ones(100), 16000, pesq_score=3.0)
    with pytest.raises(ValueError, match="length mismatch"):
        C.composite(np.ones(16000), np.ones(15999), 16000, pesq_score=3.0)
