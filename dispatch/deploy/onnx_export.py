"""ONNX export of an enhancement student as one ``[1, L] -> [1, L]`` float32 graph.

The graph is the model's ``forward_enhance`` for one utterance: ESPnet's encoder and separator
modules as they are, then the conv decoder's transposed convolution zero-padded to L (ESPnet's
``ConvDecoder`` asks ``ConvTranspose1d`` for ``output_size=ilens.max()``, a data-dependent size
that torch.export cannot trace; the extra samples are zeros either way). L is dynamic, from one
encoder window (``min_samples``, stored in the file's metadata with ``sample_rate``) upwards.

Which students export (torch 2.11, onnx 1.23, onnxscript 0.7):
  * ``encoder: conv`` + ``decoder: conv`` students (Conv-TasNet, ``separator: tcn``, causal or
    not): yes, with either exporter.
  * STFT front-ends (DCCRN-CL, Distil-DCCRN, Uformer): no. Their spectra are complex tensors and
    ONNX has no complex type (the TorchScript exporter stops at ``aten::stft`` with a complex
    output); ESPnet's ``Stft`` masks padding with data-dependent lengths
    (``make_pad_mask(ilens)``), and with the STFT written out by hand torch.export of DCCRN with a
    dynamic length still fails inside its complex LSTM (unbacked sizes). A real-valued
    re-implementation (STFT as a convolution, complex products written as real ones) would be
    needed. :func:`check_exportable` says so in one line.
Every export is checked: onnxruntime's output on a peak-normalised test signal of another length
than the traced one must equal the PyTorch model's within ``tol`` (max abs error).
"""
from __future__ import annotations

import contextlib
import io
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np
import torch

from dispatch.deploy.loading import load_espnet_model, onnx_session
from dispatch.deploy.stats import rtf_test_input
from dispatch.utils.io import atomic_write_bytes

PathLike = Union[str, Path]
EXPORTERS = ("dynamo", "torchscript")
INPUT_NAME, OUTPUT_NAME = "wav", "enhanced"


class NotExportable(ValueError):
    """A model whose graph cannot be exported; the message is one line that says why."""


def check_exportable(model: torch.nn.Module) -> None:
    """Raise :class:`NotExportable` unless the model has a conv encoder and a conv decoder."""
    from espnet2.enh.decoder.conv_decoder import ConvDecoder
    from espnet2.enh.encoder.conv_encoder import ConvEncoder

    encoder, decoder = getattr(model, "encoder", None), getattr(model, "decoder", None)
    if isinstance(encoder, ConvEncoder) and isinstance(decoder, ConvDecoder):
        if getattr(model, "num_spk", 1) != 1:
            raise NotExportable("only single-speaker models (num_spk: 1) export")
        return
    kind = type(encoder).__name__
    if hasattr(encoder, "stft"):
        raise NotExportable(
            f"the {kind} front-end does not export: its spectra are complex tensors (ONNX has no "
            "complex type) and ESPnet's STFT masks padding with data-dependent lengths; only "
            "conv-encoder students (Conv-TasNet, separator: tcn) export")
    raise NotExportable(f"encoder {kind} / decoder {type(decoder).__name__}: only the conv "
                        "encoder and decoder (Conv-TasNet) export")


class WaveformGraph(torch.nn.Module):
    """``forward_enhance`` of a conv-encoder ESPnet enh model as ``wav [1, L] -> [1, L]``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        check_exportable(model)
        self.model = model.eval()
        self.min_samples = int(model.encoder.kernel_size)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        length = wav.shape[1]
        ilens = torch.full((1,), length, dtype=torch.long)
        feats, flens = self.model.encoder(wav, ilens)  # [1, T, N]
        masked, _, _ = self.model.separator(feats, flens, {})  # [[1, T, N]]
        out = self.model.decoder.convtrans1d(masked[0].transpose(1, 2)).squeeze(1)  # [1, (T-1)S+K]
        return torch.nn.functional.pad(out, (0, length - out.shape[-1]))  # [1, L]


def test_signal(length: int, seed: int = 0) -> np.ndarray:
    """A peak-normalised (peak 1) noise burst with a slow envelope, [1, length] float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / max(length, 1)
    x = rng.standard_normal(length) * (0.3 + np.abs(np.sin(2 * np.pi * 3 * t)))
    return (x / np.max(np.abs(x))).astype(np.float32)[None]


@contextlib.contextmanager
def _quiet_exporter():
    """Keep the exporters' progress prints, warnings and trace logs (e.g. "torchvision is not
    installed") off the console and out of pytest's log capture."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.__trace", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _export_bytes(graph: WaveformGraph, exporter: str, opset: Optional[int]) -> bytes:
    """The serialized ONNX model of ``graph`` with a dynamic length axis."""
    example = torch.from_numpy(test_signal(max(4 * graph.min_samples, 8000), seed=1))  # [1, L]
    with tempfile.TemporaryDirectory(prefix="dispatch_onnx_") as tmp, _quiet_exporter():
        path = Path(tmp) / "model.onnx"
        if exporter == "dynamo":
            length = torch.export.Dim("L", min=graph.min_samples)
            torch.onnx.export(graph, (example,), str(path), dynamo=True, external_data=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_shapes={"wav": {1: length}}, opset_version=opset,
                              verbose=False)
        elif exporter == "torchscript":
            torch.onnx.export(graph, (example,), str(path), dynamo=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {1: "L"}, OUTPUT_NAME: {1: "L"}},
                              opset_version=opset or 17)
        else:
            raise ValueError(f"unknown exporter '{exporter}'; choose one of {', '.join(EXPORTERS)}")
        return path.read_bytes()


def max_abs_error(model: torch.nn.Module, onnx_bytes_or_path, length: int, fs: int) -> float:
    """Max abs difference between onnxruntime and ``forward_enhance`` on ``test_signal(length)``."""
    from dispatch.deploy.loading import TorchEnhancer

    x = test_signal(length, seed=2)  # [1, L]
    expected = TorchEnhancer(model, fs).run(x)  # [1, L]
    got = onnx_session(onnx_bytes_or_path, threads=1).run(None, {INPUT_NAME: x})[0]  # [1, L]
    if got.shape != expected.shape:
        return float("inf")
    return float(np.max(np.abs(got - expected)))


def export_onnx(model: torch.nn.Module, out: PathLike, fs: int, exporter: str = "dynamo",
                opset: Optional[int] = None, tol: float = 1e-4, source: str = "") -> Dict:
    """Write ``out`` (.onnx) for ``model`` and check it against PyTorch; returns a report dict
    (``max_abs_err``, ``min_samples``, ``seconds``...). Raises NotExportable, or ValueError when
    the check fails."""
    import onnx

    start = time.perf_counter()
    model = model.to("cpu").eval()
    graph = WaveformGraph(model)
    proto = onnx.load_from_string(_export_bytes(graph, exporter, opset))
    meta = {"sample_rate": str(int(fs)), "min_samples": str(graph.min_samples),
            "exporter": exporter, "source": str(source), "producer": "dispatch.deploy.onnx_export"}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()
    check_length = int(1.37 * fs) + 3  # not the traced length
    err = max_abs_error(model, data, check_length, fs)
    if not err <= tol:
        raise ValueError(f"the ONNX graph differs from PyTorch by {err:.3g} (max abs, tolerance "
                         f"{tol:g}) on a {check_length}-sample signal; not written")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    return {"onnx": str(out), "exporter": exporter, "sample_rate": int(fs),
            "min_samples": graph.min_samples, "check_samples": check_length,
            "max_abs_err": err, "seconds": time.perf_counter() - start}


def measure_onnx_rtf(path_or_bytes, fs: int = 16000, seconds: float = 4.0, runs: int = 5,
                     warmup: int = 1) -> float:
    """Median onnxruntime time (1 intra-op thread) of a ``seconds``-long input / ``seconds``."""
    session = onnx_session(path_or_bytes, threads=1)
    x = rtf_test_input(fs, seconds).numpy()  # [1, L]
    times = []
    for i in range(warmup + runs):
        start = time.perf_counter()
        session.run(None, {INPUT_NAME: x})
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times) / seconds


def onnx_rtf_of_model(model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0,
                      runs: int = 5, exporter: str = "torchscript") -> Dict[str, object]:
    """``{"rtf_onnx_1thread": float | None, "onnx_note": str}``: export to a temporary file and
    time it, or None with the reason when the model does not export. The TorchScript exporter is
    the default here: it takes ~1 s instead of ~10 s, and both graphs give the same outputs."""
    try:
        with tempfile.TemporaryDirectory(prefix="dispatch_onnx_rtf_") as tmp:
            report = export_onnx(model, Path(tmp) / "model.onnx", fs, exporter=exporter)
            rtf = measure_onnx_rtf(report["onnx"], fs, seconds, runs)
    except (NotExportable, ValueError) as exc:
        return {"rtf_onnx_1thread": None, "onnx_note": str(exc).splitlines()[0]}
    return {"rtf_onnx_1thread": rtf, "onnx_note": f"max abs err vs PyTorch {report['max_abs_err']:.1e}"}


def export_model_file(model_path: PathLike, out: PathLike, exporter: str = "dynamo",
                      opset: Optional[int] = None, tol: float = 1e-4) -> Dict:
    """:func:`export_onnx` of an export dir or packed archive (ModelLoadError if it won't load)."""
    model, fs = load_espnet_model(model_path)
    return export_onnx(model, out, fs, exporter=exporter, opset=opset, tol=tol,
                       source=Path(model_path).name)
