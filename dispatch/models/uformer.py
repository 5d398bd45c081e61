"""Uformer separator (Fu et al., "Uformer: A Unet based dilated complex & real dual-path conformer
network for simultaneous speech enhancement and dereverberation", ICASSP 2022, arXiv 2111.06015).

Written here from the paper's description, as an ESPnet ``AbsSeparator`` (``separator: uformer``).
It takes the STFT encoder's spectrum ``[B, T, F]`` (complex) and returns
``(masked_list, ilens, others)`` like ESPnet's DCCRN separator: ``masked_list`` holds one complex
``[B, T, F]`` spectrum per speaker, ``others`` holds ``mask_spk{i}`` (the complex mask).

Structure (what the paper describes)::

    X [B, T, F] --drop DC, power-law compress |X|^c--> complex branch  C0 [B, 2, F', T]
                                                      magnitude branch M0 [B, 1, F', T]
    encoder i (i = 1..L):  C = PReLU(BN(ComplexConv(C)))   M = PReLU(BN(Conv(M)))   C, M = fuse(C, M)
    bottleneck: ``num_blocks`` dilated dual-path conformer blocks, each, per branch:
        x + FF/2 -> time attention -> frequency attention -> dilated convs -> x + FF/2 -> LayerNorm
        (the complex and magnitude branches are fused after every sub-module)
    decoder i (i = L..1):  skip = enc_i * gate(enc_i, dec)        (encoder-decoder attention)
                           C = PReLU(BN(ComplexConvT([skip, C])))  same for M;  C, M = fuse(C, M)
    masks: complex mask Mc (DCCRN "E" style: tanh magnitude, phase rotation) and magnitude mask
           Mm = sigmoid(M);  |Y|^c = (tanh|Mc| |X|^c + Mm |X|^c) / 2,  angle(Y) = angle(X) + angle(Mc)
    Y = decompress(|Y|^c) e^{j angle(Y)}; the DC bin is the mixture's DC bin times the mean gain

Feature layout: a complex feature map with ``C`` complex channels is a real tensor
``[B, 2C, F, T]``, real parts first, then imaginary parts (as ``espnet2.enh.layers.complexnn``);
a magnitude feature map is ``[B, C, F, T]``. Each ``encoder.i`` / ``decoder.i`` module returns the
tuple ``(complex [B, 2C, F, T], magnitude [B, C, F, T])``, so a forward hook
(``dispatch.kd.features.FeatureTap``) sees the complex map first: channel dim 1, time last, which
is the AT-KL default layout and the same layout as DCCRN's ``separator.encoder.i``.

Choices made here where the paper is silent (or where this port departs from it on purpose):

1. **Fusion** between the complex and the magnitude branch (the paper fuses "after each layer" but
   gives no formula here): parameter-free, per channel:
   ``M' = M + |C|`` and ``C' = C + M * C / (|C| + eps)`` (the magnitude branch lends its magnitude
   with the complex branch's phase). Both branches always have the same channel count.
2. **Complex attention**: Q, K, V come from complex linear maps; the score is
   ``softmax(Re(Q K^H) / sqrt(d))`` (a real score applied to complex V). Multi-head, ``attention_heads``
   heads; the same score form along time (per frequency) and along frequency (per frame).
   No padding mask: zero-padded frames take part in time attention (as padding does in DCCRN's LSTM).
   Attention is bidirectional (non-causal) along time.
3. **Dilated convolutions**: ``num_dilated`` residual depthwise-separable 2-D convolutions per
   block (kernel ``dilated_kernel`` x ``dilated_kernel``), time dilation ``2**k`` (1, 2, 4, 8) and
   frequency dilation ``2**(num_dilated-1-k)`` clipped so it fits the bottleneck's bins, each
   followed by BatchNorm and PReLU (a complex depthwise conv for the complex branch).
4. **Feed-forward modules**: Macaron half-step feed-forward (as in Conformer) with hidden size
   ``ff_hidden`` over channels, Swish activation; complex version = complex linear maps with the
   activation applied to the real and imaginary parts separately. Pre-LayerNorm over channels
   (over real and imaginary parts jointly for the complex branch).
5. **Encoder-decoder attention**: a sigmoid gate on the skip connection computed by a 1x1
   convolution from ``[encoder_i, decoder_input]``; for the complex branch the gate is computed
   from the real parts and imaginary parts jointly and scales both by the same amount.
6. **Convolutions**: kernel (5, 2) over (frequency, time), frequency stride 2, as DCCRN (the paper
   follows DCCRN); the time kernel looks one frame back (left padding 1), so every layer keeps
   exactly T frames. Channels (complex and magnitude alike) default to 8, 16, 32, 64, 128, 128.
   BatchNorm after every convolution but the last decoder layer, which outputs the masks.
7. **Frequency bins**: the DC bin is dropped (as DCCRN) and the remaining ``F-1`` bins are
   zero-padded up to a multiple of ``2**L`` for the strided encoder and cropped back; the DC bin of
   the output is the mixture's DC bin times the mean (over bins) of the fused magnitude gain.
8. **Power-law compression** of the input magnitude with exponent ``compress`` (default 0.5); the
   masks act on the compressed magnitude and the output is decompressed (``^(1/compress)``) so that
   ESPnet's iSTFT decoder and SI-SNR loss see an ordinary spectrum. The paper trains with its own
   spectral losses; here the task loss is whatever the ESPnet config says (SI-SNR by default).
9. **Mask combination**: the final magnitude is the mean of the complex-masked and the
   magnitude-masked compressed magnitudes; the phase comes from the complex mask only.
10. **Bottleneck depth**: ``num_blocks`` (default 1) dilated dual-path conformer blocks; the
    attention width is the bottleneck channel count (128 complex channels), 8 heads by default.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch_complex.tensor import ComplexTensor

from espnet2.enh.separator.abs_separator import AbsSeparator

EPS = 1e-8


# ----------------------------------------------------------------------------------------------
# complex helpers: a complex map with C channels is [B, 2C, ...] = [real (C); imag (C)]
# ----------------------------------------------------------------------------------------------
def split_complex(x: torch.Tensor, dim: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
    """[B, 2C, ...] -> ([B, C, ...], [B, C, ...])"""
    re, im = torch.chunk(x, 2, dim=dim)
    return re, im


def join_complex(re: torch.Tensor, im: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """([B, C, ...], [B, C, ...]) -> [B, 2C, ...]"""
    return torch.cat([re, im], dim=dim)


def cat_complex(maps: Sequence[torch.Tensor], dim: int = 1) -> torch.Tensor:
    """Channel concatenation of complex maps: [real parts of all; imaginary parts of all]."""
    parts = [split_complex(m, dim) for m in maps]
    return torch.cat([p[0] for p in parts] + [p[1] for p in parts], dim=dim)


def complex_magnitude(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """[B, 2C, ...] -> [B, C, ...]"""
    re, im = split_complex(x, dim)
    return torch.sqrt(re ** 2 + im ** 2 + EPS)


def fuse(cplx: torch.Tensor, mag: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exchange information between the branches (choice 1 of the module docstring).

    cplx: [B, 2C, ...]; mag: [B, C, ...] -> same shapes
    """
    re, im = split_complex(cplx)
    norm = torch.sqrt(re ** 2 + im ** 2 + EPS)  # [B, C, ...]
    new_mag = mag + norm
    new_cplx = join_complex(re + mag * re / norm, im + mag * im / norm)
    return new_cplx, new_mag


class ComplexConv2d(nn.Module):
    """Complex 2-D convolution: (Wr + jWi) * (xr + jxi).  [B, 2Cin, F, T] -> [B, 2Cout, F', T']"""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, transposed: bool = False, output_padding=0):
        super().__init__()
        if transposed:
            def make():
                return nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride, padding,
                                          output_padding=output_padding, groups=groups,
                                          dilation=dilation)
        else:
            def make():
                return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                 dilation=dilation, groups=groups)
        self.real = make()
        self.imag = make()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = split_complex(x)  # [B, Cin, F, T] each
        out_re = self.real(re) - self.imag(im)
        out_im = self.real(im) + self.imag(re)
        return join_complex(out_re, out_im)


class ComplexLinear(nn.Module):
    """Complex linear map over the last dim: [..., 2D] (real D; imag D) -> [..., 2H]"""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.real = nn.Linear(in_features, out_features)
        self.imag = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        re, im = split_complex(x, dim=-1)
        return join_complex(self.real(re) - self.imag(im), self.real(im) + self.imag(re), dim=-1)


# ----------------------------------------------------------------------------------------------
# hybrid encoder / decoder layers
# ----------------------------------------------------------------------------------------------
class HybridEncoderLayer(nn.Module):
    """One encoder layer of both branches plus fusion.

    (cplx [B, 2Cin, F, T], mag [B, Cin, F, T]) -> (cplx [B, 2Cout, F/2, T], mag [B, Cout, F/2, T])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5):
        super().__init__()
        pad_f = kernel_size // 2
        self.cplx_conv = ComplexConv2d(in_channels, out_channels, (kernel_size, 2), (2, 1),
                                       (pad_f, 0))
        self.cplx_norm = nn.BatchNorm2d(2 * out_channels)
        self.cplx_act = nn.PReLU()
        self.mag_conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 2), (2, 1), (pad_f, 0))
        self.mag_norm = nn.BatchNorm2d(out_channels)
        self.mag_act = nn.PReLU()

    def forward(self, cplx: torch.Tensor, mag: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cplx = F.pad(cplx, (1, 0))  # one frame of look-back: keeps T frames
        mag = F.pad(mag, (1, 0))
        cplx = self.cplx_act(self.cplx_norm(self.cplx_conv(cplx)))
        mag = self.mag_act(self.mag_norm(self.mag_conv(mag)))
        return fuse(cplx, mag)


class HybridDecoderLayer(nn.Module):
    """Encoder-decoder attention on the skips, one transposed-conv layer per branch, fusion.

    (skip_c [B, 2Cs, F, T], skip_m [B, Cs, F, T], cplx [B, 2Cin, F, T], mag [B, Cin, F, T])
    -> (cplx [B, 2Cout, 2F, T], mag [B, Cout, 2F, T])
    """

    def __init__(self, skip_channels: int, in_channels: int, out_channels: int,
                 kernel_size: int = 5, last: bool = False):
        super().__init__()
        pad_f = kernel_size // 2
        self.cplx_gate = nn.Conv2d(2 * (skip_channels + in_channels), skip_channels, 1)
        self.mag_gate = nn.Conv2d(skip_channels + in_channels, skip_channels, 1)
        cin = skip_channels + in_channels
        self.cplx_conv = ComplexConv2d(cin, out_channels, (kernel_size, 2), (2, 1), (pad_f, 0),
                                       transposed=True, output_padding=(1, 0))
        self.mag_conv = nn.ConvTranspose2d(cin, out_channels, (kernel_size, 2), (2, 1),
                                           (pad_f, 0), output_padding=(1, 0))
        self.last = last
        if not last:
            self.cplx_post = nn.Sequential(nn.BatchNorm2d(2 * out_channels), nn.PReLU())
            self.mag_post = nn.Sequential(nn.BatchNorm2d(out_channels), nn.PReLU())

    def forward(self, skip_c: torch.Tensor, skip_m: torch.Tensor, cplx: torch.Tensor,
                mag: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        gate_c = torch.sigmoid(self.cplx_gate(torch.cat([skip_c, cplx], 1)))  # [B, Cs, F, T]
        gate_m = torch.sigmoid(self.mag_gate(torch.cat([skip_m, mag], 1)))  # [B, Cs, F, T]
        skip_c = skip_c * torch.cat([gate_c, gate_c], 1)
        skip_m = skip_m * gate_m
        num_frames = cplx.shape[-1]
        cplx = self.cplx_conv(cat_complex([skip_c, cplx]))[..., :num_frames]  # [B, 2Cout, 2F, T]
        mag = self.mag_conv(torch.cat([skip_m, mag], 1))[..., :num_frames]  # [B, Cout, 2F, T]
        if not self.last:
            cplx = self.cplx_post(cplx)
            mag = self.mag_post(mag)
        return fuse(cplx, mag)


# ----------------------------------------------------------------------------------------------
# dilated dual-path conformer
# ----------------------------------------------------------------------------------------------
class FeedForward(nn.Module):
    """Half-step pre-LN feed-forward over channels.  x: [B, C', F, T] (C' = 2C if complex)"""

    def __init__(self, channels: int, hidden: int, is_complex: bool, dropout: float = 0.0):
        super().__init__()
        width = 2 * channels if is_complex else channels
        self.norm = nn.LayerNorm(width)
        if is_complex:
            self.fc1, self.fc2 = ComplexLinear(channels, hidden), ComplexLinear(hidden, channels)
        else:
            self.fc1, self.fc2 = nn.Linear(channels, hidden), nn.Linear(hidden, channels)
        self.act = nn.SiLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x.permute(0, 2, 3, 1))  # [B, F, T, C']
        y = self.fc2(self.dropout(self.act(self.fc1(y))))  # [B, F, T, C']
        return x + 0.5 * self.dropout(y).permute(0, 3, 1, 2)


class AxisAttention(nn.Module):
    """Multi-head self-attention along time (``axis='time'``) or frequency, pre-LN, residual.

    x: [B, C', F, T] -> [B, C', F, T]. Complex: real score Re(Q K^H) / sqrt(d) (choice 2).
    """

    def __init__(self, channels: int, heads: int, is_complex: bool, axis: str,
                 dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention width {channels} is not divisible by {heads} heads")
        if axis not in ("time", "freq"):
            raise ValueError(f"axis must be 'time' or 'freq', got {axis!r}")
        self.heads, self.axis, self.is_complex = heads, axis, is_complex
        width = 2 * channels if is_complex else channels
        self.norm = nn.LayerNorm(width)
        linear = ComplexLinear if is_complex else nn.Linear
        self.q, self.k, self.v, self.out = (linear(channels, channels) for _ in range(4))
        self.dropout = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[N, S, W] -> [N, H, S, W/H] (complex: real and imag parts of each head side by side)"""
        n, s, _ = x.shape
        if self.is_complex:
            re, im = split_complex(x, dim=-1)
            re = re.reshape(n, s, self.heads, -1)
            im = im.reshape(n, s, self.heads, -1)
            return torch.cat([re, im], dim=-1).transpose(1, 2)
        return x.reshape(n, s, self.heads, -1).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        """[N, H, S, W/H] -> [N, S, W]"""
        n, h, s, w = x.shape
        x = x.transpose(1, 2)  # [N, S, H, w]
        if self.is_complex:
            re, im = torch.chunk(x, 2, dim=-1)
            return join_complex(re.reshape(n, s, -1), im.reshape(n, s, -1), dim=-1)
        return x.reshape(n, s, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, t = x.shape
        if self.axis == "time":
            seq = x.permute(0, 2, 3, 1).reshape(b * f, t, c)  # [B*F, T, C']
        else:
            seq = x.permute(0, 3, 2, 1).reshape(b * t, f, c)  # [B*T, F, C']
        y = self.norm(seq)
        q, k, v = self._heads(self.q(y)), self._heads(self.k(y)), self._heads(self.v(y))
        # Re(Q K^H) = Qr Kr^T + Qi Ki^T: the dot product of [Qr, Qi] and [Kr, Ki]
        depth = q.shape[-1] // 2 if self.is_complex else q.shape[-1]
        score = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(depth)  # [N, H, S, S]
        weights = self.dropout(torch.softmax(score, dim=-1))
        y = self.out(self._merge(torch.matmul(weights, v)))  # [N, S, C']
        seq = seq + self.dropout(y)
        if self.axis == "time":
            return seq.reshape(b, f, t, c).permute(0, 3, 1, 2)
        return seq.reshape(b, t, f, c).permute(0, 3, 2, 1)


class DilatedConv(nn.Module):
    """Residual depthwise-separable dilated 2-D convolution.  x: [B, C', F, T] -> same shape"""

    def __init__(self, channels: int, is_complex: bool, kernel: int, dilation_f: int,
                 dilation_t: int):
        super().__init__()
        pad_f = dilation_f * (kernel - 1) // 2
        self.pad_t = (dilation_t * (kernel - 1) // 2, dilation_t * (kernel - 1)
                      - dilation_t * (kernel - 1) // 2)
        width = 2 * channels if is_complex else channels
        if is_complex:
            self.depthwise = ComplexConv2d(channels, channels, kernel, padding=(pad_f, 0),
                                           dilation=(dilation_f, dilation_t), groups=channels)
            self.pointwise = ComplexConv2d(channels, channels, 1)
        else:
            self.depthwise = nn.Conv2d(channels, channels, kernel, padding=(pad_f, 0),
                                       dilation=(dilation_f, dilation_t), groups=channels)
            self.pointwise = nn.Conv2d(channels, channels, 1)
        self.norm = nn.BatchNorm2d(width)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.depthwise(F.pad(x, self.pad_t))  # [B, C', F, T]
        return x + self.act(self.norm(self.pointwise(y)))


class DilatedDualPathConformer(nn.Module):
    """One block of both branches with fusion after every sub-module.

    (cplx [B, 2C, F, T], mag [B, C, F, T]) -> same shapes
    """

    def __init__(self, channels: int, freq_bins: int, ff_hidden: int = 256, heads: int = 8,
                 num_dilated: int = 4, dilated_kernel: int = 3, dropout: float = 0.0):
        super().__init__()

        def branch(is_complex: bool) -> nn.ModuleDict:
            convs = []
            for k in range(num_dilated):
                dil_f = 2 ** (num_dilated - 1 - k)
                while dil_f > 1 and dil_f * (dilated_kernel - 1) >= freq_bins:
                    dil_f //= 2
                convs.append(DilatedConv(channels, is_complex, dilated_kernel, dil_f, 2 ** k))
            width = 2 * channels if is_complex else channels
            return nn.ModuleDict(dict(
                ff1=FeedForward(channels, ff_hidden, is_complex, dropout),
                time_att=AxisAttention(channels, heads, is_complex, "time", dropout),
                freq_att=AxisAttention(channels, heads, is_complex, "freq", dropout),
                dilated=nn.ModuleList(convs),
                ff2=FeedForward(channels, ff_hidden, is_complex, dropout),
                norm=nn.LayerNorm(width),
            ))

        self.cplx = branch(True)
        self.mag = branch(False)

    def forward(self, cplx: torch.Tensor, mag: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        for name in ("ff1", "time_att", "freq_att"):
            cplx, mag = fuse(self.cplx[name](cplx), self.mag[name](mag))
        for conv_c, conv_m in zip(self.cplx["dilated"], self.mag["dilated"]):
            cplx, mag = fuse(conv_c(cplx), conv_m(mag))
        cplx, mag = fuse(self.cplx["ff2"](cplx), self.mag["ff2"](mag))
        cplx = self.cplx["norm"](cplx.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        mag = self.mag["norm"](mag.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return cplx, mag


# ----------------------------------------------------------------------------------------------
# the separator
# ----------------------------------------------------------------------------------------------
class UformerSeparator(AbsSeparator):
    """Uformer as an ESPnet separator; see the module docstring for structure and choices.

    Args:
        input_dim: the STFT encoder's output_dim (n_fft // 2 + 1)
        num_spk: number of outputs
        channels: complex (and magnitude) channels of encoder layers 1..L
        kernel_size: frequency kernel of the encoder/decoder convolutions
        num_blocks: dilated dual-path conformer blocks in the bottleneck
        attention_heads, ff_hidden, num_dilated, dilated_kernel, dropout: bottleneck settings
        compress: power-law exponent applied to the input magnitude (1.0: none)
        use_builtin_complex: torch complex outputs if True, else ComplexTensor
    """

    def __init__(self, input_dim: int, num_spk: int = 1,
                 channels: Sequence[int] = (8, 16, 32, 64, 128, 128), kernel_size: int = 5,
                 num_blocks: int = 1, attention_heads: int = 8, ff_hidden: int = 256,
                 num_dilated: int = 4, dilated_kernel: int = 3, dropout: float = 0.0,
                 compress: float = 0.5, use_builtin_complex: bool = True):
        super().__init__()
        if not 0 < float(compress) <= 1:
            raise ValueError(f"compress must be in (0, 1], got {compress}")
        self._num_spk = int(num_spk)
        self.channels = [int(c) for c in channels]
        self.compress = float(compress)
        self.use_builtin_complex = use_builtin_complex
        depth = len(self.channels)
        self.bins = input_dim - 1  # without the DC bin
        stride = 2 ** depth
        self.padded_bins = -(-self.bins // stride) * stride
        bottleneck_bins = self.padded_bins // stride

        widths = [1] + self.channels
        self.encoder = nn.ModuleList(
            HybridEncoderLayer(widths[i], widths[i + 1], kernel_size) for i in range(depth))
        self.conformer = nn.ModuleList(
            DilatedDualPathConformer(self.channels[-1], bottleneck_bins, ff_hidden,
                                     attention_heads, num_dilated, dilated_kernel, dropout)
            for _ in range(num_blocks))
        self.decoder = nn.ModuleList()
        for i in range(depth, 0, -1):  # decoder.0 mirrors encoder.(L-1)
            last = i == 1
            out = self._num_spk if last else widths[i - 1]
            self.decoder.append(HybridDecoderLayer(widths[i], widths[i], out, kernel_size, last))

    @property
    def num_spk(self) -> int:
        return self._num_spk

    def forward(
        self,
        input: Union[torch.Tensor, ComplexTensor],
        ilens: torch.Tensor,
        additional: Optional[Dict] = None,
    ) -> Tuple[List[Union[torch.Tensor, ComplexTensor]], torch.Tensor, OrderedDict]:
        """input: [B, T, F] complex spectrum; -> ([B, T, F] x num_spk, ilens, others)"""
        spec_re = input.real.transpose(1, 2).float()  # [B, F, T]
        spec_im = input.imag.transpose(1, 2).float()  # [B, F, T]
        mag = torch.sqrt(spec_re ** 2 + spec_im ** 2 + EPS)  # [B, F, T]
        cos, sin = spec_re / mag, spec_im / mag  # noisy phase
        mag_c = mag ** self.compress  # [B, F, T]

        pad = self.padded_bins - self.bins
        x_mag = F.pad(mag_c[:, 1:], (0, 0, 0, pad))[:, None]  # [B, 1, F', T]
        x_cplx = torch.cat([x_mag * F.pad(cos[:, 1:], (0, 0, 0, pad))[:, None],
                            x_mag * F.pad(sin[:, 1:], (0, 0, 0, pad))[:, None]], 1)  # [B, 2, F', T]

        skips = []
        c, m = x_cplx, x_mag
        for layer in self.encoder:
            c, m = layer(c, m)
            skips.append((c, m))
        for block in self.conformer:
            c, m = block(c, m)
        for i, layer in enumerate(self.decoder):
            skip_c, skip_m = skips[-1 - i]
            c, m = layer(skip_c, skip_m, c, m)
        # c: [B, 2S, F', T]; m: [B, S, F', T]
        mask_re, mask_im = split_complex(c[:, :, : self.bins])  # [B, S, F-1, T]
        mask_mag = torch.sigmoid(m[:, :, : self.bins])  # [B, S, F-1, T]

        masked, others = [], OrderedDict()
        for s in range(self._num_spk):
            c_norm = torch.sqrt(mask_re[:, s] ** 2 + mask_im[:, s] ** 2 + EPS)  # [B, F-1, T]
            gain = 0.5 * (torch.tanh(c_norm) + mask_mag[:, s])  # [B, F-1, T]
            rot_cos, rot_sin = mask_re[:, s] / c_norm, mask_im[:, s] / c_norm
            dc_gain = gain.mean(dim=1, keepdim=True)  # [B, 1, T]
            gain = torch.cat([dc_gain, gain], 1)  # [B, F, T]
            rot_cos = F.pad(rot_cos, (0, 0, 1, 0), value=1.0)  # [B, F, T]
            rot_sin = F.pad(rot_sin, (0, 0, 1, 0))
            est_mag = (gain * mag_c) ** (1.0 / self.compress)  # [B, F, T]
            out_re = est_mag * (cos * rot_cos - sin * rot_sin)  # [B, F, T]
            out_im = est_mag * (cos * rot_sin + sin * rot_cos)  # [B, F, T]
            cmask_re = F.pad(mask_re[:, s], (0, 0, 1, 0)).transpose(1, 2)  # [B, T, F]
            cmask_im = F.pad(mask_im[:, s], (0, 0, 1, 0)).transpose(1, 2)
            if self.use_builtin_complex:
                masked.append(torch.complex(out_re.transpose(1, 2), out_im.transpose(1, 2)))
                others[f"mask_spk{s + 1}"] = torch.complex(cmask_re, cmask_im)
            else:
                masked.append(ComplexTensor(out_re.transpose(1, 2), out_im.transpose(1, 2)))
                others[f"mask_spk{s + 1}"] = ComplexTensor(cmask_re, cmask_im)
        return masked, ilens, others
