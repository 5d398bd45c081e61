"""Size and cost of an ESPnet enhancement model: parameters, MACs per second, CPU real-time factor.

    python -m dispatch.bin.model_stats --config exp/SYS/config.yaml \
        [--model_file exp/SYS/valid.loss.best.pth] --out exp/SYS/model_stats.json \
        [--fs 16000] [--seconds 4]

``params_M``        trainable parameters / 1e6
``macs_G_per_s``    MACs of one forward pass on ``seconds`` of audio (FLOPs / 2, counted by
                    ``torch.utils.flop_counter.FlopCounterMode``: matrix products and convolutions
                    only; FFTs and element-wise work are not counted; RNNs are counted, with
                    oneDNN off while counting), divided by ``seconds``, / 1e9
``rtf_cpu_1thread`` median wall time of ``runs`` forward passes with ``torch.set_num_threads(1)``,
                    divided by ``seconds`` (after ``warmup`` untimed passes)
The forward pass is ``ESPnetEnhancementModel.forward_enhance`` (encoder, separator, decoder) on a
batch of one; the weights do not change any of these numbers, so ``--model_file`` is optional.
Deployment figures (``dispatch.deploy.stats``): ``rtf_onnx_1thread`` (onnxruntime, 1 thread, same
input), and for causal students ``latency_ms`` (algorithmic) and ``rtf_chunk_1thread`` (chunked
streaming with ``--chunk_ms`` chunks).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from typing import Callable, Sequence

import torch

from dispatch.utils.io import atomic_write_text
from dispatch.utils.weights import UnsafeWeightsError, load_weights


def _forward_fn(model: torch.nn.Module, fs: int) -> Callable[[torch.Tensor], object]:
    """x: [1, L] -> estimates; uses ``forward_enhance`` when the model has it."""
    if hasattr(model, "forward_enhance"):

        def run(x: torch.Tensor) -> object:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
            return model.forward_enhance(x, lengths, additional={}, fs=fs)

        return run
    return lambda x: model(x)


def count_params_m(model: torch.nn.Module) -> float:
    """Trainable parameters in millions."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6


def count_macs_g_per_s(model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0) -> float:
    """MACs (FLOPs / 2) of one forward pass per second of audio, in G."""
    from torch.utils.flop_counter import FlopCounterMode

    x = 0.1 * torch.randn(1, int(round(fs * seconds)), generator=torch.Generator().manual_seed(0))
    run = _forward_fn(model, fs)
    counter = FlopCounterMode(display=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        # oneDNN's fused CPU LSTM/GRU kernels are invisible to the counter (counted as 0);
        # with oneDNN off, RNNs run as the matrix products that it counts.
        with torch.backends.mkldnn.flags(enabled=False), torch.inference_mode(), counter:
            run(x)
    return counter.get_total_flops() / 2.0 / seconds / 1e9


def measure_rtf_cpu_1thread(
    model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0, runs: int = 5, warmup: int = 1
) -> float:
    """Median single-thread CPU time of a forward pass divided by the audio duration."""
    x = 0.1 * torch.randn(1, int(round(fs * seconds)), generator=torch.Generator().manual_seed(0))
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


def model_stats(
    model: torch.nn.Module, fs: int = 16000, seconds: float = 4.0, runs: int = 5
) -> dict[str, float]:
    """``{"params_M", "macs_G_per_s", "rtf_cpu_1thread"}`` for a model on CPU (put in eval mode)."""
    model = model.to("cpu").eval()
    return {
        "params_M": count_params_m(model),
        "macs_G_per_s": count_macs_g_per_s(model, fs, seconds),
        "rtf_cpu_1thread": measure_rtf_cpu_1thread(model, fs, seconds, runs=runs),
        "fs": fs,
        "seconds": seconds,
        "runs": runs,
    }


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="ESPnet enh config.yaml")
    parser.add_argument("--model_file", default=None, help="optional .pth (weights do not matter)")
    parser.add_argument("--out", required=True, help="output JSON")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate of the test input (Hz)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help="length of the test input (s) for MACs and the real-time factor")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (the median is kept)")
    parser.add_argument("--chunk_ms", type=float, default=10.0,
                        help="chunk length (ms) for the streaming figures of causal students")
    parser.add_argument("--no_onnx", action="store_true",
                        help="skip the ONNX export and its onnxruntime real-time factor")
    return parser


def build_enh_model(config: str, model_file: str | None = None) -> torch.nn.Module:
    """An ESPnet enh model from a training config (full ``config.yaml`` or a recipe's partial one).

    Options missing from the file take ESPnet's defaults; the toolkit's separators (e.g. uformer)
    are registered first.
    """
    import yaml

    from dispatch.deploy.loading import build_enh_model_from_config

    with open(config, encoding="utf-8") as f:
        options = yaml.safe_load(f) or {}
    # weights only: a model file cannot run code
    return build_enh_model_from_config(options, load_weights(model_file) if model_file else None)


def main(cmd: Sequence[str] | None = None) -> dict[str, float]:
    args = get_parser().parse_args(cmd)
    from dispatch.deploy.loading import ModelLoadError
    from dispatch.deploy.stats import deployment_stats

    try:
        model = build_enh_model(args.config, args.model_file)
    except (UnsafeWeightsError, ModelLoadError) as exc:
        raise SystemExit(f"model_stats: error: {exc}") from None
    stats = model_stats(model, args.fs, args.seconds, args.runs)
    stats.update(deployment_stats(model, args.fs, args.seconds, args.runs, args.chunk_ms,
                                  onnx=not args.no_onnx))
    stats.update(config=str(args.config), model_file=args.model_file)
    atomic_write_text(args.out, json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats), flush=True)
    return stats


if __name__ == "__main__":
    main()
