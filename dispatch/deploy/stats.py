"""Size, cost and deployment figures of a model for ``dispatch.bin.model_stats``, the step benchmark
and RESULTS.md.

Size and cost (:func:`model_stats`):

``params_M``        trainable parameters / 1e6
``macs_G_per_s``    MACs of one forward pass on ``seconds`` of audio (FLOPs / 2, counted by
                    ``torch.utils.flop_counter.FlopCounterMode``: matrix products and convolutions
                    only; FFTs and element-wise work are not counted; RNNs are counted, with
                    oneDNN off while counting), divided by ``seconds``, / 1e9
``rtf_cpu_1thread`` median wall time of ``runs`` forward passes with ``torch.set_num_threads(1)``,
                    divided by ``seconds`` (after ``warmup`` untimed passes)

The forward pass is ``ESPnetEnhancementModel.forward_enhance`` (encoder, separator, decoder) on a
batch of one; the weights do not change any of these numbers.

Deployment (:func:`deployment_stats`):

``rtf_onnx_1thread``   onnxruntime (1 intra-op thread) time of the exported ``[1, L]`` graph on the
                       same ``seconds``-long input as the PyTorch RTF, / ``seconds``; None with
                       ``onnx_note`` saying why for a model that does not export
``causal``             whether the exact chunked runner (dispatch.deploy.streaming) accepts it
``latency_ms``         its algorithmic latency with ``chunk_ms`` chunks (rounded up to whole
                       encoder strides); None for non-causal models
``rtf_chunk_1thread``  median single-thread time of one chunk / the chunk's duration
"""
from __future__ import annotations

import statistics
import time
import warnings
from typing import Callable, Dict

import torch


def _forward_fn(model: torch.nn.Module, fs: int) -> Callable[[torch.Tensor], object]:
    """x: [1, L] -> estimates; uses ``forward_enhance`` when the model has it."""
    if hasattr(model, "forward_enhance"):

        def run(x: torch.Tensor) -> object:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)  # [1]
            return model.forward_enhance(x, lengths, additional={}, fs=fs)

        return run
    return lambda x: model(x)


def rtf_test_input(fs: int, seconds: float) -> torch.Tensor:
    """The fixed random ``seconds``-long signal that every figure here is measured on (also the
    ONNX and chunked-streaming RTFs).  -> [1, L]"""
    generator = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(1, int(round(fs * seconds)), generator=generator)


def count_params_m(model: torch.nn.Module) -> float:
    """Trainable parameters in millions."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6


def count_macs_g_per_s(model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0) -> float:
    """MACs (FLOPs / 2) of one forward pass per second of audio, in G."""
    from torch.utils.flop_counter import FlopCounterMode

    x = rtf_test_input(fs, seconds)  # [1, L]
    run = _forward_fn(model, fs)
    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # oneDNN's fused CPU LSTM/GRU kernels are invisible to the counter (counted as 0);
        # with oneDNN off, RNNs run as the matrix products that it counts.
        with torch.backends.mkldnn.flags(enabled=False), torch.inference_mode(), counter:
            run(x)
    return counter.get_total_flops() / 2.0 / seconds / 1e9


def measure_rtf_cpu_1thread(model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0,
                            runs: int = 5, warmup: int = 1) -> float:
    """Median single-thread CPU time of a forward pass divided by the audio duration."""
    x = rtf_test_input(fs, seconds)  # [1, L]
    run = _forward_fn(model, fs)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        times = []
        with torch.inference_mode():
            for i in range(warmup + runs):
                start = time.perf_counter()
                run(x)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) / seconds


def model_stats(model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0, runs: int = 5
                ) -> Dict[str, float]:
    """``{"params_M", "macs_G_per_s", "rtf_cpu_1thread"}`` (and the test input's ``fs``,
    ``seconds``, ``runs``) for a model on CPU (put in eval mode)."""
    model = model.to("cpu").eval()
    return {
        "params_M": count_params_m(model),
        "macs_G_per_s": count_macs_g_per_s(model, fs, seconds),
        "rtf_cpu_1thread": measure_rtf_cpu_1thread(model, fs, seconds, runs=runs),
        "fs": fs,
        "seconds": seconds,
        "runs": runs,
    }


def deployment_stats(model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0,
                     runs: int = 5, chunk_ms: float = 10.0, onnx: bool = True) -> Dict[str, object]:
    """The figures of the module docstring for ``model`` on CPU."""
    from dispatch.deploy.onnx_export import onnx_rtf_of_model
    from dispatch.deploy.streaming import streaming_stats

    model = model.to("cpu").eval()
    out: Dict[str, object] = {}
    if onnx:
        out.update(onnx_rtf_of_model(model, fs, seconds, runs))
    out.update(streaming_stats(model, fs, chunk_ms, seconds))
    return out
