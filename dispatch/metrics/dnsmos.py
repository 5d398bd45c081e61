"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808, offline, with onnxruntime.

The ONNX models are the ones bundled in the ``speechmos`` wheel (``dnsmos_models/sig_bak_ovr.onnx``
and ``dnsmos_models/model_v8.onnx``); explicit paths can be given instead.  Scoring is espnet's
``espnet2.enh.layers.dnsmos.DNSMOS_local`` (9.01 s windows, hop 1 s, shorter audio is repeated,
polynomial calibration of the raw scores); we only create its ONNX sessions ourselves so that they
use one thread each and stay open across files.  Nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

DNSMOS_KEYS = ("DNSMOS_SIG", "DNSMOS_BAK", "DNSMOS_OVRL", "DNSMOS_P808")


def bundled_model_paths() -> tuple[Path, Path] | None:
    """(sig_bak_ovr.onnx, model_v8.onnx) from the installed speechmos wheel, or None."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "dnsmos_models"
    primary, p808 = root / "sig_bak_ovr.onnx", root / "model_v8.onnx"
    return (primary, p808) if primary.is_file() and p808.is_file() else None


def dnsmos_unavailable_reason(model_paths: tuple[Path, Path] | None = None) -> str | None:
    """None when DNSMOS can run, else a one-line reason."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "DNSMOS skipped: onnxruntime is not installed"
    paths = model_paths or bundled_model_paths()
    if paths is None:
        return "DNSMOS skipped: no local ONNX models (install the speechmos wheel with --no-deps)"
    for p in paths:
        if not Path(p).is_file():
            return f"DNSMOS skipped: model file {p} is missing"
    return None


class DnsmosScorer:
    """Holds the two ONNX sessions; call it once per utterance.

    >>> scorer = DnsmosScorer()          # doctest: +SKIP
    >>> scorer(wave, 16000)              # {'DNSMOS_SIG': ..., 'DNSMOS_BAK': ..., ...}
    """

    def __init__(self, model_paths: tuple[Path, Path] | None = None, threads: int = 1) -> None:
        reason = dnsmos_unavailable_reason(model_paths)
        if reason:
            raise RuntimeError(reason)
        import onnxruntime as ort
        from espnet2.enh.layers.dnsmos import DNSMOS_local

        primary, p808 = model_paths or bundled_model_paths()  # type: ignore[misc]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self._impl = DNSMOS_local(None, None, use_gpu=False, convert_to_torch=False)
        self._impl.onnx_sess = ort.InferenceSession(str(primary), options, providers=providers)
        self._impl.p808_onnx_sess = ort.InferenceSession(str(p808), options, providers=providers)

    def __call__(self, wave: np.ndarray, fs: int) -> dict[str, float]:
        """wave: [L] float at ``fs`` (resampled to 16 kHz inside when needed)."""
        out = self._impl(np.asarray(wave, dtype=np.float32), fs)
        return {
            "DNSMOS_SIG": float(out["SIG"]),
            "DNSMOS_BAK": float(out["BAK"]),
            "DNSMOS_OVRL": float(out["OVRL"]),
            "DNSMOS_P808": float(out["P808_MOS"]),
        }
