"""DNSMOS P.835 via onnxruntime and the speechmos models; skipped with a reason when absent."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from dispatch.metrics.dnsmos import DNSMOS_KEYS, DnsmosScorer, dnsmos_unavailable_reason
from helpers import SHARED_DATA

VBD = SHARED_DATA / "vbd_test_p232"  # $DISPATCH_TEST_DATA (helpers)
REASON = dnsmos_unavailable_reason()


def test_unavailable_reason_is_one_line() -> None:
    assert REASON is None or ("\n" not in REASON and REASON.startswith("DNSMOS skipped"))
    missing = dnsmos_unavailable_reason((Path("/nonexistent/a.onnx"), Path("/nonexistent/b.onnx")))
    assert missing is None or "\n" not in missing


@pytest.mark.skipif(REASON is not None, reason=REASON or "")
@pytest.mark.skipif(not VBD.is_dir(), reason=f"{VBD} is absent")
def test_dnsmos_ranks_clean_above_very_noisy() -> None:
    scorer = DnsmosScorer()  # one pair of sessions for both files
    clean, fs = sf.read(VBD / "clean" / "p232_005.wav")
    noisy, _ = sf.read(VBD / "noisy" / "p232_005.wav")  # 1.9 dB SNR
    sc, sn = scorer(clean, fs), scorer(noisy, fs)
    assert set(sc) == set(DNSMOS_KEYS)
    for scores in (sc, sn):
        assert all(1.0 <= v <= 5.0 for v in scores.values())
    assert sc["DNSMOS_BAK"] > sn["DNSMOS_BAK"] + 0.5
    assert sc["DNSMOS_OVRL"] > sn["DNSMOS_OVRL"]
