"""AT-KL: attention transfer compared with a KL divergence (Han et al., Distil-DCCRN, 2408.04267).

For every configured layer pair (teacher module path, student module path) a feature map ``F`` is
reduced to two attention vectors (complex features use their magnitude)::

    a_time[t]    = sum_{c, rest} |F[c, rest, t]|^p        # [B, T]
    a_channel[c] = sum_{t, rest} |F[c, rest, t]|^p        # [B, C]
    a <- a / (||a||_2 + eps)

``rest`` is every dim other than batch, channel and time (frequency for 4-D ``[B, C, F, T]`` maps;
nothing for 3-D ``[B, C, T]`` maps). A teacher vector whose length differs from the student's is
linearly interpolated to the student's length (``align_corners=False``) before the normalisation,
so architectures with different channel counts and STFT hops are bridged. Then::

    KL_pair = KL(softmax(a_T / tau) || softmax(a_S / tau))   for time and for channel, mean over batch
    L = attention_weight * sum_pairs (KL_time + KL_channel) + output_weight * (-SI-SNR(s, t))

Padding: frame t of a feature map with T frames is valid iff ``t < ceil(lengths[b] * T / L)``
(``L`` = samples of the batch). Invalid frames are left out of both vectors, of the softmax and of the
KL. This is exact when T is proportional to L, and a close approximation otherwise.

Defaults (the paper's constants are not public; all configurable): ``p`` 2, ``tau`` 1.0,
``output_weight`` 1.0, ``attention_weight`` 1.0 (multiplies the summed KL terms), layout dim 1 =
channel and last dim = time for both models. ``layouts`` optionally gives, per pair, a dict with
any of ``teacher_channel_dim``, ``teacher_time_dim``, ``student_channel_dim``, ``student_time_dim``
(e.g. ``{student_channel_dim: 2, student_time_dim: 1}`` for a batch-first LSTM output ``[B, T, H]``).

``layer_pairs`` items are ``[teacher_path, student_path]`` or ``{teacher: ..., student: ...}``.
Interface: ``feature_pairs`` lists the pairs; the caller taps them with
:class:`dispatch.kd.features.FeatureTap` and passes ``student_feats=[...]`` and
``teacher_feats=[...]`` (one tensor per pair, in pair order). Teacher features are detached.
Stats: ``loss``, ``at_time``, ``at_channel``, ``output`` (the -SI-SNR term before weighting).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from dispatch.kd.base import KDLoss
from dispatch.kd.output_kd import sisnr_kd_loss
from dispatch.kd.stft import EPS, full_lengths, full_precision

LAYOUT_KEYS = ("teacher_channel_dim", "teacher_time_dim", "student_channel_dim", "student_time_dim")


def feature_power(feat: Any, p: float) -> torch.Tensor:
    """Float32 ``|F|^p`` of a real, complex or ``ComplexTensor`` feature map.  [B, ...] -> [B, ...]

    p = 2 (the default) is a product, with no ``abs``, ``sqrt`` or ``pow`` pass.
    """
    if isinstance(feat, torch.Tensor) and not feat.is_complex():
        x = feat.float()
        return x * x if p == 2 else x.abs() ** p
    real, imag = feat.real.float(), feat.imag.float()  # complex tensor or ComplexTensor
    power = torch.addcmul(real * real, imag, imag)  # |F|^2
    return power if p == 2 else power ** (p / 2)


def valid_feature_frames(lengths: torch.Tensor, num_frames: int, num_samples: int) -> torch.Tensor:
    """Frame t is valid iff ``t < ceil(lengths[b] * T / L)`` (at least one frame).  -> [B, T] bool"""
    count = (lengths * num_frames + num_samples - 1) // max(num_samples, 1)  # [B]
    count = count.clamp(1, num_frames)  # [B]
    return torch.arange(num_frames, device=lengths.device)[None, :] < count[:, None]  # [B, T]


class _SquaredEnergies(torch.autograd.Function):
    """p = 2 energies of a real map x [B, K, T] with frame weights w [B, T], without autograd's
    intermediates: ``a_time = sum_k x^2`` [B, T], ``a_k = sum_t w x^2`` [B, K]. Backward:
    ``dx = 2 x (g_time[t] + g_k[k] w[t])``, one [B, K, T] buffer instead of five."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor):
        ctx.set_materialize_grads(False)
        square = x * x  # [B, K, T]
        ctx.save_for_backward(x, weight)
        return square.sum(dim=1), torch.bmm(square, weight[:, :, None])[..., 0]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_time: Optional[torch.Tensor], grad_k: Optional[torch.Tensor]):
        x, weight = ctx.saved_tensors
        coef = torch.zeros_like(x[:, :1, :]) if grad_time is None else 2.0 * grad_time[:, None, :]
        if grad_k is not None:
            coef = torch.addcmul(coef, 2.0 * grad_k[:, :, None], weight[:, None, :])  # [B, K, T]
        return coef.expand_as(x) * x, None


def attention_energy(feat: Any, channel_dim: int, time_dim: int, p: float,
                     frames: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Time and channel attention energies (before normalisation) of one feature map.

    feat: [B, ...] with a channel and a time dim; frames: [B, T] bool or None
    -> (a_time [B, T], a_channel [B, C])
    """
    squared = p == 2 and isinstance(feat, torch.Tensor) and not feat.is_complex()
    x = feat.float() if squared else feature_power(feat, p)  # [B, ...]
    ndim = x.dim()
    c, t = channel_dim % ndim, time_dim % ndim
    if c == 0 or t == 0 or c == t:
        raise ValueError(f"bad layout for a {ndim}-D feature: channel_dim {channel_dim}, "
                         f"time_dim {time_dim} (dim 0 is the batch)")
    rest = [d for d in range(1, ndim) if d not in (c, t)]
    x = x.permute(0, c, *rest, t)  # [B, C, ..., T]
    batch, channels, num_frames = x.shape[0], x.shape[1], x.shape[-1]
    x = x.reshape(batch, -1, num_frames)  # [B, C*R, T]
    weight = (torch.ones(batch, num_frames, device=x.device) if frames is None
              else frames.to(x.dtype))  # [B, T]
    if squared:
        a_time, a_rows = _SquaredEnergies.apply(x, weight)  # [B, T], [B, C*R]
    else:  # the frame mask enters as the vector of a matrix product: no masked copy of the map
        a_time, a_rows = x.sum(dim=1), torch.bmm(x, weight[:, :, None])[..., 0]
    return a_time * weight, a_rows.reshape(batch, channels, -1).sum(dim=-1)  # [B, T], [B, C]


def resize(vector: torch.Tensor, size: int) -> torch.Tensor:
    """Linear interpolation of [B, K] vectors to [B, size]."""
    if vector.shape[-1] == size:
        return vector
    return F.interpolate(vector[:, None, :], size=size, mode="linear", align_corners=False)[:, 0]


def attention_kl(teacher: torch.Tensor, student: torch.Tensor, mask: Optional[torch.Tensor],
                 tau: float, eps: float = EPS) -> torch.Tensor:
    """KL(softmax(a_T / tau) || softmax(a_S / tau)) of L2-normalised vectors, mean over batch.

    teacher, student: [B, K] energies (teacher already at the student's length); mask: [B, K] bool
    """
    if mask is None:
        mask = torch.ones_like(student, dtype=torch.bool)
    zero = torch.zeros_like(student)
    teacher = torch.where(mask, teacher, zero)  # [B, K]
    student = torch.where(mask, student, zero)  # [B, K]
    a_t = teacher / (teacher.norm(dim=-1, keepdim=True) + eps)  # [B, K]
    a_s = student / (student.norm(dim=-1, keepdim=True) + eps)  # [B, K]
    log_p_t = torch.log_softmax((a_t / tau).masked_fill(~mask, float("-inf")), dim=-1)  # [B, K]
    log_p_s = torch.log_softmax((a_s / tau).masked_fill(~mask, float("-inf")), dim=-1)  # [B, K]
    terms = torch.where(mask, log_p_t.exp() * (log_p_t - log_p_s), zero)  # [B, K]
    return terms.sum(dim=-1).mean()


class ATKLLoss(KDLoss):
    """``atkl``: attention transfer along time and channel with KL, plus SI-SNR output KD."""

    STAT_KEYS = ("loss", "at_time", "at_channel", "output")

    def __init__(self, layer_pairs: Sequence[Sequence[str]] = (), p: float = 2.0, tau: float = 1.0,
                 output_weight: float = 1.0, attention_weight: float = 1.0,
                 layouts: Optional[Sequence[dict]] = None, eps: float = EPS) -> None:
        super().__init__()
        pairs = []
        for pair in layer_pairs or ():
            if isinstance(pair, dict) and set(pair) == {"teacher", "student"}:
                pair = (pair["teacher"], pair["student"])
            if isinstance(pair, (str, dict)) or len(pair) != 2:
                raise ValueError("each layer pair must be [teacher_path, student_path] or "
                                 f"{{teacher: path, student: path}}, got {pair!r}")
            pairs.append((str(pair[0]), str(pair[1])))
        self.feature_pairs = pairs
        layouts = list(layouts) if layouts else [{} for _ in pairs]
        if len(layouts) != len(pairs):
            raise ValueError(f"layouts has {len(layouts)} entries for {len(pairs)} layer pairs")
        self.layouts = []
        for layout in layouts:
            bad = sorted(set(layout or {}) - set(LAYOUT_KEYS))
            if bad:
                raise ValueError(f"unknown layout key(s) {', '.join(bad)}; accepted: "
                                 f"{', '.join(LAYOUT_KEYS)}")
            full = {"teacher_channel_dim": 1, "teacher_time_dim": -1,
                    "student_channel_dim": 1, "student_time_dim": -1}
            full.update({k: int(v) for k, v in (layout or {}).items()})
            self.layouts.append(full)
        if float(tau) <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.p, self.tau, self.eps = float(p), float(tau), float(eps)
        self.output_weight, self.attention_weight = float(output_weight), float(attention_weight)

    def forward(self, student_wav: torch.Tensor, teacher_wav: torch.Tensor, ref_wav: torch.Tensor,
                lengths: Optional[torch.Tensor] = None, student_feats: Optional[list] = None,
                teacher_feats: Optional[list] = None) -> tuple[torch.Tensor, dict]:
        num_pairs = len(self.feature_pairs)
        if num_pairs and (student_feats is None or teacher_feats is None
                          or len(student_feats) != num_pairs or len(teacher_feats) != num_pairs):
            raise ValueError(f"atkl needs student_feats and teacher_feats with {num_pairs} tensors "
                             "each (tap feature_pairs with dispatch.kd.features.FeatureTap)")
        with full_precision(student_wav.device):
            lengths = full_lengths(student_wav, lengths)  # [B]
            num_samples = student_wav.shape[-1]
            kl_time = student_wav.new_zeros((), dtype=torch.float32)
            kl_channel = student_wav.new_zeros((), dtype=torch.float32)
            for i in range(num_pairs):
                layout = self.layouts[i]
                s_feat = student_feats[i]
                t_feat = teacher_feats[i]
                t_feat = t_feat.detach() if isinstance(t_feat, torch.Tensor) else t_feat
                s_frames = valid_feature_frames(lengths, s_feat.shape[layout["student_time_dim"]],
                                                num_samples)  # [B, Ts]
                t_frames = valid_feature_frames(lengths, t_feat.shape[layout["teacher_time_dim"]],
                                                num_samples)  # [B, Tt]
                s_time, s_chan = attention_energy(s_feat, layout["student_channel_dim"],
                                                  layout["student_time_dim"], self.p, s_frames)
                with torch.no_grad():
                    t_time, t_chan = attention_energy(t_feat, layout["teacher_channel_dim"],
                                                      layout["teacher_time_dim"], self.p, t_frames)
                    t_time = resize(t_time, s_time.shape[-1])  # [B, Ts]
                    t_chan = resize(t_chan, s_chan.shape[-1])  # [B, Cs]
                kl_time = kl_time + attention_kl(t_time, s_time, s_frames, self.tau, self.eps)
                kl_channel = kl_channel + attention_kl(t_chan, s_chan, None, self.tau, self.eps)
            output = sisnr_kd_loss(student_wav, teacher_wav, lengths)
            loss = self.attention_weight * (kl_time + kl_channel) + self.output_weight * output
        stats = {"loss": loss.detach(), "at_time": kl_time.detach(),
                 "at_channel": kl_channel.detach(), "output": output.detach()}
        return loss, stats
