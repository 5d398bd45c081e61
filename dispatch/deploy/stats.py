"""Deployment figures of a model for ``dispatch.bin.model_stats`` and RESULTS.md.

``rtf_onnx_1thread``   onnxruntime (1 intra-op thread) time of the exported ``[1, L]`` graph on the
                       same ``seconds``-long input as the PyTorch RTF, / ``seconds``; None with
                       ``onnx_note`` saying why for a model that does not export
``causal``             whether the exact chunked runner (dispatch.deploy.streaming) accepts it
``latency_ms``         its algorithmic latency with ``chunk_ms`` chunks (rounded up to whole
                       encoder strides); None for non-causal models
``rtf_chunk_1thread``  median single-thread time of one chunk / the chunk's duration
"""
from __future__ import annotations

from typing import Dict

import torch


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
