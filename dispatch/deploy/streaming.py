"""Exact chunk-by-chunk inference of a causal Conv-TasNet, with bounded state.

A causal Conv-TasNet (``encoder: conv``, ``separator: tcn`` with ``causal: true`` and
``norm_type: cLN``, ``decoder: conv``) needs, to produce the frames of a new chunk, only
  * the input samples of the last, incomplete encoder window (fewer than ``kernel_size``),
  * for each TCN block, the last ``(kernel - 1) * dilation`` inputs of its depthwise convolution
    (the causal padding of the whole-utterance model is exactly these frames, zeros at the start),
  * the decoder's overlap-add tail (``kernel_size - stride`` samples).
:class:`StreamingTasNet` keeps exactly that, so its chunked output equals the whole-utterance
``forward_enhance`` (up to float rounding); the state size does not grow with the stream.

ESPnet's own ``espnet2.bin.enh_inference_streaming`` (``TCNSeparator.forward_streaming``) instead
re-runs the whole TCN on a buffer of the last receptive-field frames for every new frame, starting
from a zero *input* buffer: it costs a receptive field of frames per frame, and its first frames
differ from the whole-utterance output (zero encoder features are not zero activations inside the
network). That is why this runner exists.

Not streamable, with the reason in one line (:func:`check_streamable`): ``causal: false`` (the
depthwise convolutions look ahead), ``norm_type: gLN`` (statistics over the whole utterance),
other separators and STFT front-ends.

Algorithmic latency (:func:`algorithmic_latency_samples`): the worst case, over the positions of a
chunk, of the time from the start of an input sample until the output sample at the same position
can be computed (compute time not counted). An output sample is final once every encoder window
covering it has been read, so for chunks of C samples (a multiple of the stride S, window K) it is
``C + K - S`` when ``K - S <= C``; for C = S it is the window length K, the usual Conv-TasNet figure.
"""
from __future__ import annotations

import math
import statistics
import time
from typing import List

import numpy as np
import torch
import torch.nn.functional as F

from dispatch.deploy.stats import rtf_test_input


class NotStreamable(ValueError):
    """A model the chunked runner cannot run exactly; the message is one line that says why."""


def _tcn_blocks(separator) -> list:
    """The TemporalBlocks of a TCNSeparator, in order."""
    return [layer for repeat in separator.tcn.network[2] for layer in repeat]


def check_streamable(model: torch.nn.Module) -> None:
    """Raise :class:`NotStreamable` unless ``model`` is a causal, cLN/BN conv-tcn-conv model."""
    from espnet2.enh.decoder.conv_decoder import ConvDecoder
    from espnet2.enh.encoder.conv_encoder import ConvEncoder
    from espnet2.enh.layers.tcn import Chomp1d, GlobalLayerNorm
    from espnet2.enh.separator.tcn_separator import TCNSeparator

    enc, sep, dec = (getattr(model, k, None) for k in ("encoder", "separator", "decoder"))
    if not (isinstance(enc, ConvEncoder) and isinstance(dec, ConvDecoder)):
        raise NotStreamable(f"encoder {type(enc).__name__} / decoder {type(dec).__name__}: only "
                            "conv encoders and decoders (Conv-TasNet) stream here")
    if (enc.kernel_size, enc.stride) != (dec.kernel_size, dec.stride):
        raise NotStreamable("the encoder and decoder windows differ (kernel_size/stride)")
    if not isinstance(sep, TCNSeparator):
        raise NotStreamable(f"separator {type(sep).__name__}: only the tcn separator streams here")
    if sep.tcn.skip_connection:
        raise NotStreamable("TCN skip connections are not supported by the chunked runner")
    if any(not isinstance(b.net[3].net[1], Chomp1d) for b in _tcn_blocks(sep)):
        raise NotStreamable("the separator is not causal (causal: false): its depthwise "
                            "convolutions look ahead; train a student with causal: true")
    if any(isinstance(m, GlobalLayerNorm) for m in sep.modules()):
        raise NotStreamable("norm_type: gLN normalises over the whole utterance, which is not "
                            "causal; train the causal student with norm_type: cLN")


class StreamingTasNet:
    """Chunked runner: ``process(chunk)`` returns the output samples that are final so far,
    ``flush(length)`` the rest; together they equal ``forward_enhance`` on the whole input."""

    def __init__(self, model: torch.nn.Module):
        check_streamable(model)
        self.model = model.eval()
        self.encoder, self.separator, self.decoder = model.encoder, model.separator, model.decoder
        self.kernel, self.stride = int(self.encoder.kernel_size), int(self.encoder.stride)
        self.blocks = _tcn_blocks(self.separator)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: empty input buffer, zero convolution histories, no output tail."""
        self.pending_in = torch.zeros(0)  # [n] samples not yet covered by a full window
        self.history: List[torch.Tensor] = []  # per block: [1, H, (P-1)*d] depthwise inputs
        for block in self.blocks:
            dw = block.net[3].net[0]
            context = (dw.kernel_size[0] - 1) * dw.dilation[0]
            self.history.append(torch.zeros(1, dw.in_channels, context))
        self.pending_out = torch.zeros(0)  # [K - S] overlap-add tail
        self.samples_out = 0

    def state_numel(self) -> int:
        """Floats held between chunks (bounded: independent of the stream's length)."""
        return (self.pending_in.numel() + self.pending_out.numel()
                + sum(h.numel() for h in self.history))

    def _masks(self, feats: torch.Tensor) -> torch.Tensor:
        """Encoder frames [1, N, n] -> first speaker's mask [1, N, n], advancing the histories."""
        tcn = self.separator.tcn
        out = tcn.network[:2](feats)  # cLN + bottleneck: [1, B, n]
        for i, block in enumerate(self.blocks):
            conv1x1, prelu, norm, dsconv = block.net
            hidden = norm(prelu(conv1x1(out)))  # [1, H, n]
            dw, _chomp, prelu2, norm2, pointwise = dsconv.net
            context = torch.cat([self.history[i], hidden], dim=2)  # [1, H, ctx + n]
            self.history[i] = context[:, :, context.shape[2] - self.history[i].shape[2]:]
            y = F.conv1d(context, dw.weight, dw.bias, stride=1, padding=0, dilation=dw.dilation,
                         groups=dw.groups)  # [1, H, n]
            out = out + pointwise(norm2(prelu2(y)))  # [1, B, n]
        score = tcn.network[3:](out)  # [1, C * N, n]
        score = score.view(1, tcn.C, tcn.out_channel, score.shape[2])  # [1, C, N, n]
        kind = tcn.mask_nonlinear
        if kind == "softmax":
            score = torch.softmax(score, dim=1)
        elif kind in ("relu", "sigmoid", "tanh"):
            score = getattr(torch, kind)(score)
        elif kind != "linear":
            raise NotStreamable(f"mask nonlinearity {kind} is not supported")
        return score[:, 0]  # [1, N, n]

    @torch.inference_mode()
    def process(self, chunk) -> np.ndarray:
        """Feed ``chunk`` ([n] samples, any n); return the newly final output samples [m]."""
        x = torch.cat([self.pending_in, torch.as_tensor(np.asarray(chunk), dtype=torch.float32)
                       .reshape(-1)])  # [n_pending + n]
        frames = (x.shape[0] - self.kernel) // self.stride + 1 if x.shape[0] >= self.kernel else 0
        if frames <= 0:
            self.pending_in = x
            return np.zeros(0, dtype=np.float32)
        used = (frames - 1) * self.stride + self.kernel
        feats = F.relu(self.encoder.conv1d(x[:used].view(1, 1, -1)))  # [1, N, frames]
        self.pending_in = x[frames * self.stride:]
        est = feats * self._masks(feats) if self.separator.masking else self._masks(feats)
        wav = self.decoder.convtrans1d(est).view(-1)  # [(frames - 1) * S + K]
        size = max(wav.shape[0], self.pending_out.shape[0], frames * self.stride)
        acc = F.pad(self.pending_out, (0, size - self.pending_out.shape[0]))
        acc = acc + F.pad(wav, (0, size - wav.shape[0]))
        emit, self.pending_out = acc[:frames * self.stride], acc[frames * self.stride:]
        self.samples_out += emit.shape[0]
        return emit.numpy()

    def flush(self, total_length: int) -> np.ndarray:
        """The remaining samples of a stream of ``total_length`` input samples (the decoder's
        tail, then zeros, as the whole-utterance decoder pads to the input length)."""
        rest = max(0, int(total_length) - self.samples_out)
        tail = F.pad(self.pending_out, (0, max(0, rest - self.pending_out.shape[0])))[:rest]
        self.samples_out += rest
        self.pending_out = torch.zeros(0)
        return tail.numpy()

    def run(self, wave, chunk_samples: int) -> np.ndarray:
        """A whole signal [L] fed in chunks of ``chunk_samples``; returns [L]."""
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        self.reset()
        parts = [self.process(wave[i:i + chunk_samples])
                 for i in range(0, wave.shape[0], chunk_samples)]
        parts.append(self.flush(wave.shape[0]))
        return np.concatenate(parts)


def chunk_samples_for(model: torch.nn.Module, chunk_ms: float, fs: int) -> int:
    """``chunk_ms`` in samples, rounded up to a whole number of encoder strides (at least one)."""
    stride = int(model.encoder.stride)
    return max(1, math.ceil(chunk_ms * fs / 1000.0 / stride)) * stride


def algorithmic_latency_samples(kernel: int, stride: int, chunk: int) -> int:
    """Worst-case latency in samples of the chunked runner (module docstring), for chunks of
    ``chunk`` samples (a multiple of ``stride``) and encoder windows of ``kernel``/``stride``."""
    if chunk % stride:
        raise ValueError(f"chunk {chunk} is not a multiple of the stride {stride}")
    worst = 0
    for n in range(chunk):  # one period of positions; the pattern repeats every chunk
        last_window_end = (n // stride) * stride + kernel  # samples needed for the last frame
        ready = math.ceil(last_window_end / chunk) * chunk
        worst = max(worst, ready - n)
    return worst


def measure_chunk_rtf(runner: StreamingTasNet, fs: int, chunk: int, seconds: float = 4.0,
                      warmup: int = 5) -> float:
    """Median single-thread time of one ``process(chunk)`` call / the chunk's duration."""
    x = rtf_test_input(fs, seconds)[0].numpy()  # [L]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = []
    try:
        runner.reset()
        for i, start in enumerate(range(0, x.shape[0] - chunk + 1, chunk)):
            t0 = time.perf_counter()
            runner.process(x[start:start + chunk])
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return statistics.median(times) / (chunk / fs) if times else math.nan


def streaming_stats(model: torch.nn.Module, fs: int, chunk_ms: float = 10.0,
                    seconds: float = 4.0) -> dict:
    """``{"causal": bool, "latency_ms", "chunk_ms", "rtf_chunk_1thread"}`` (the last three None
    with a ``streaming_note`` for a model that does not stream)."""
    try:
        runner = StreamingTasNet(model.to("cpu").eval())
    except NotStreamable as exc:
        return {"causal": False, "latency_ms": None, "chunk_ms": None, "rtf_chunk_1thread": None,
                "streaming_note": str(exc)}
    chunk = chunk_samples_for(model, chunk_ms, fs)
    latency = algorithmic_latency_samples(runner.kernel, runner.stride, chunk)
    return {"causal": True, "latency_ms": 1000.0 * latency / fs, "chunk_ms": 1000.0 * chunk / fs,
            "rtf_chunk_1thread": measure_chunk_rtf(runner, fs, chunk, seconds),
            "streaming_note": f"chunk {chunk} samples; state {runner.state_numel()} floats"}

