"""The distillation model: an ESPnet enhancement student trained next to a frozen teacher.

    L = L_task(s, y) + kd_weight * L_kd(s, t, y)

``L_task`` is the student's own ESPnet criterion list (its ``forward`` is run unchanged, so with
``kd_loss: none`` the loss is exactly that of ``ESPnetEnhancementModel``). ``t`` is the teacher's
estimate of the same mixture, computed in eval mode under ``torch.no_grad``.

Checkpoint layout: ``student.*`` and ``teacher.*`` keys. The teacher's parameters have
``requires_grad=False`` and are left out of the optimizer by ``EnhDistillTask``. Use
``dispatch.bin.export_student`` to write the student as a stock ESPnet model (prefix-free keys).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Dict, Iterator, List, Optional, Tuple

import torch
from espnet2.enh.espnet_model import ESPnetEnhancementModel
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from dispatch.kd.features import FeatureTap


class CapturedEstimate:
    """What an ESPnet enhancement model passed to its ``forward_loss``: the final estimates."""

    speech_pre: List[torch.Tensor]  # num_spk x [B, L]
    speech_lengths: torch.Tensor  # [B]
    speech_ref: List[torch.Tensor]  # num_spk x [B, L]


@contextlib.contextmanager
def capture_estimate(model: ESPnetEnhancementModel) -> Iterator[CapturedEstimate]:
    """Run ``model.forward`` unchanged while recording the inputs of its ``forward_loss``.

    ESPnet's forward normalises, resamples and trims before computing the loss; reading the
    estimates at ``forward_loss`` gives exactly the signals the task loss sees.
    """
    captured = CapturedEstimate()
    original = model.forward_loss

    def recording_forward_loss(speech_pre, speech_lengths, feature_mix, feature_pre, others,
                               speech_ref, *args, **kwargs):
        captured.speech_pre = speech_pre
        captured.speech_lengths = speech_lengths
        captured.speech_ref = list(speech_ref)
        return original(speech_pre, speech_lengths, feature_mix, feature_pre, others,
                        speech_ref, *args, **kwargs)

    model.forward_loss = recording_forward_loss  # instance attribute shadows the method
    try:
        yield captured
    finally:
        del model.forward_loss


class ESPnetEnhDistillModel(AbsESPnetModel):
    """Student + frozen teacher; ``forward`` returns ESPnet's ``(loss, stats, weight)``.

    A batch whose teacher output is NaN/Inf keeps its task loss and drops only the KD term:
    the student's own loss against the clean reference is still valid, so the step still
    teaches it something, and the gradient stays finite. A warning is logged and the stat
    ``kd_skipped`` is 1 (its epoch mean is the fraction of skipped batches); ``loss_kd`` and
    the ``kd_*`` stats (``kd_grad_ratio`` too) are NaN for that batch, which ESPnet's reporter leaves out of the epoch
    means. The stat keys are the same on every batch, as DDP's all-reduce of stats requires.
    A batch whose *total* loss is non-finite (e.g. a NaN input) is skipped whole by ESPnet's
    trainer: it sees a non-finite grad norm and does not update ("Skipping updating the model").
    """

    def __init__(
        self,
        student: ESPnetEnhancementModel,
        teacher: ESPnetEnhancementModel,
        kd_loss: torch.nn.Module,
        kd_weight: float = 1.0,
        grad_ratio_interval: int = 0,
    ):
        super().__init__()
        if getattr(student, "num_spk", 1) != 1:
            raise ValueError(
                f"the student has num_spk={student.num_spk}; distillation supports "
                "single-speaker enhancement (num_spk 1) only"
            )
        self.student = student
        self.teacher = teacher
        self.kd_loss = kd_loss
        self.kd_weight = float(kd_weight)
        self.grad_ratio_interval = int(grad_ratio_interval)
        self._train_steps = 0
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()
        pairs = list(getattr(kd_loss, "feature_pairs", []) or [])
        self._teacher_tap: Optional[FeatureTap] = None
        self._student_tap: Optional[FeatureTap] = None
        if pairs:
            self._teacher_tap = FeatureTap(teacher, [t for t, _ in pairs], name="teacher")
            self._student_tap = FeatureTap(student, [s for _, s in pairs], name="student")

    def train(self, mode: bool = True) -> "ESPnetEnhDistillModel":
        """ESPnet calls ``model.train()`` every epoch: the teacher stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def teacher_forward(
        self, speech_mix: torch.Tensor, speech_mix_lengths: torch.Tensor, **kwargs
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The teacher's estimate [B, L] and its task-loss stats, without gradient."""
        with torch.no_grad(), capture_estimate(self.teacher) as cap:
            _, stats, _ = self.teacher(speech_mix, speech_mix_lengths, **kwargs)
        return cap.speech_pre[0].detach(), stats

    def forward(
        self,
        speech_mix: torch.Tensor,
        speech_mix_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        for tap in (self._teacher_tap, self._student_tap):
            if tap is not None:
                tap.clear()
        # teacher-output cache (dispatch.bin.cache_teacher): an extra stream, not for ESPnet
        cached_teacher = kwargs.pop("teacher_ref1", None)  # [B, L]
        kwargs.pop("teacher_ref1_lengths", None)
        with capture_estimate(self.student) as cap:
            loss_task, stats, weight = self.student(speech_mix, speech_mix_lengths, **kwargs)
        stats = {k: v for k, v in stats.items() if k != "loss"}
        stats["loss_task"] = loss_task.detach()

        if self.kd_weight != 0.0 and not _is_none_loss(self.kd_loss):
            if cached_teacher is not None:
                if self._teacher_tap is not None:
                    raise ValueError("a teacher-output cache cannot serve feature KD (atkl)")
                # trimmed like the references (ESPnet cuts them to the longest mixture)
                teacher_wav = cached_teacher[..., : cap.speech_ref[0].shape[-1]].float()
                teacher_stats = {}
            else:
                teacher_wav, teacher_stats = self.teacher_forward(
                    speech_mix, speech_mix_lengths, **kwargs
                )
            for key, value in teacher_stats.items():
                if key != "loss":
                    stats[f"teacher_{key}"] = value
            student_wav = cap.speech_pre[0]  # [B, L]
            ref_wav = cap.speech_ref[0]  # [B, L]
            length = min(student_wav.shape[-1], teacher_wav.shape[-1], ref_wav.shape[-1])
            feats = {}
            if self._student_tap is not None:
                feats = dict(
                    student_feats=self._student_tap.features,
                    teacher_feats=self._teacher_tap.features,
                )
            if torch.isfinite(teacher_wav).all():
                loss_kd, kd_stats = self.kd_loss(
                    student_wav[..., :length],
                    teacher_wav[..., :length],
                    ref_wav[..., :length],
                    cap.speech_lengths.clamp(max=length),
                    **feats,
                )
                skipped = 0.0
            else:
                logging.warning("non-finite teacher output: KD term skipped for this batch")
                with torch.no_grad():  # only for the stat keys, reported as NaN
                    _, kd_stats = self.kd_loss(
                        student_wav[..., :length].detach(),
                        torch.nan_to_num(teacher_wav[..., :length], 0.0, 0.0, 0.0),
                        ref_wav[..., :length],
                        cap.speech_lengths.clamp(max=length),
                        **feats,
                    )
                kd_stats = {k: torch.full_like(torch.as_tensor(v, dtype=torch.float32), float("nan"))
                            for k, v in kd_stats.items()}
                loss_kd, skipped = loss_task.new_zeros(()), 1.0
            loss = loss_task + self.kd_weight * loss_kd
            stats["kd_grad_ratio"] = self.kd_grad_ratio(loss_task, loss_kd, skipped)
            stats["loss_kd"] = loss_kd.detach() if not skipped else loss_task.new_tensor(float("nan"))
            stats["kd_skipped"] = loss_task.new_tensor(skipped)
            for key, value in kd_stats.items():
                stats[f"kd_{key}"] = value.detach() if torch.is_tensor(value) else value
        else:
            loss = loss_task
        stats["loss"] = loss.detach()
        for tap in (self._teacher_tap, self._student_tap):
            if tap is not None:
                tap.clear()
        return force_gatherable((loss, stats, weight), loss.device)

    def kd_grad_ratio(self, loss_task: torch.Tensor, loss_kd: torch.Tensor,
                      skipped: float) -> torch.Tensor:
        """``||grad(kd_weight * L_kd)|| / ||grad(L_task)||`` over the student's trainable
        parameters, on every ``grad_ratio_interval``-th training step; NaN on the other steps
        (ESPnet's reporter leaves NaN out of the epoch mean) so that the stat keys never change.

        How hard the KD term pulls next to the task term: ~0 means the KD term cannot matter.
        """
        measure = (self.training and torch.is_grad_enabled() and self.grad_ratio_interval > 0
                   and not skipped and loss_kd.requires_grad)
        if self.training:
            self._train_steps += 1
        if not measure or (self._train_steps - 1) % self.grad_ratio_interval:
            return loss_task.new_tensor(float("nan")).detach()
        params = [p for p in self.student.parameters() if p.requires_grad]
        norms = []
        for term in (loss_task, self.kd_weight * loss_kd):
            grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)
            squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
            norms.append(torch.stack(squares).sum().sqrt() if squares else loss_task.new_zeros(()))
        return (norms[1] / norms[0].clamp_min(1e-12)).detach()

    def collect_feats(
        self, speech_mix: torch.Tensor, speech_mix_lengths: torch.Tensor, **kwargs
    ) -> Dict[str, torch.Tensor]:
        return self.student.collect_feats(speech_mix, speech_mix_lengths, **kwargs)


def _is_none_loss(kd_loss: torch.nn.Module) -> bool:
    from dispatch.kd.output_kd import NoKDLoss

    return isinstance(kd_loss, NoKDLoss)
