"""The distillation model: an ESPnet enhancement student trained next to a frozen teacher.

    L = L_task(s, y) + kd_weight * L_kd(s, t, y)

``L_task`` is the student's own ESPnet criterion list (its ``forward`` is run unchanged, so with
``kd_loss: none`` the loss is exactly that of ``ESPnetEnhancementModel``). ``t`` is the teacher's
estimate of the same mixture, computed in eval mode under ``torch.no_grad``.

``forward`` is three public steps, which the step benchmark (``dispatch.perf.step_timing``) and the
teacher-output cache (``dispatch.models.teacher_cache``) use as well:

* :meth:`ESPnetEnhDistillModel.student_estimate`: the student's ESPnet forward, unchanged; its
  task loss, stats, weight and the estimate/reference/lengths its task loss compared;
* :meth:`ESPnetEnhDistillModel.teacher_estimate`: the teacher's estimate (and its tapped
  features when the KD loss needs them), or the cached one;
* :meth:`ESPnetEnhDistillModel.kd_term`: the KD loss and its stats, or the skip of a batch whose
  teacher estimate is not finite.

Checkpoint layout: ``student.*`` and ``teacher.*`` keys. The teacher's parameters have
``requires_grad=False`` and are left out of the optimizer by ``EnhDistillTask``. Use
``dispatch.bin.export_student`` to write the student as a stock ESPnet model (prefix-free keys).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
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


def frozen_estimate(model: ESPnetEnhancementModel, speech_mix: torch.Tensor,
                    speech_mix_lengths: Optional[torch.Tensor], **kwargs
                    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """A frozen model's estimate [B, L] (read at ``forward_loss``) and its task-loss stats, from
    ESPnet's forward under ``no_grad``: the distillation model's teacher and the teacher cache."""
    with torch.no_grad(), capture_estimate(model) as cap:
        _, stats, _ = model(speech_mix, speech_mix_lengths, **kwargs)
    return cap.speech_pre[0].detach(), stats


def run_tapped(tap: Optional[FeatureTap], keep: bool, run, *args, **kwargs):
    """``(run(*args, **kwargs), features)``: the features ``tap`` stored during the call when
    ``keep`` (None without a tap); the tap holds nothing afterwards."""
    if tap is None:
        return run(*args, **kwargs), None
    tap.clear()
    try:
        out = run(*args, **kwargs)
        return out, (tap.features if keep else None)
    finally:
        tap.clear()


@dataclass
class StudentEstimate:
    """The student's step: ESPnet's ``(loss, stats, weight)`` and what its task loss compared."""

    loss: torch.Tensor  # [] the task loss
    stats: Dict[str, torch.Tensor]  # ESPnet's stats without "loss"
    weight: torch.Tensor  # [] ESPnet's batch weight
    estimate: torch.Tensor  # [B, L]
    reference: torch.Tensor  # [B, L]
    lengths: torch.Tensor  # [B]
    features: Optional[List[torch.Tensor]] = None  # tapped layers, feature KD only


@dataclass
class TeacherEstimate:
    """The teacher's step: its estimate, its task-loss stats and its tapped features."""

    estimate: torch.Tensor  # [B, L]
    stats: Dict[str, torch.Tensor]  # {} when read from the teacher-output cache
    features: Optional[List[torch.Tensor]] = None  # tapped layers, feature KD only


@dataclass
class KDTerm:
    """The KD step: the unweighted KD loss, its stats (no ``kd_`` prefix) and whether it was
    skipped for a non-finite teacher estimate (then the loss is 0 and the stats are NaN)."""

    loss: torch.Tensor  # []
    stats: Dict[str, torch.Tensor]
    skipped: bool


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

    # ------------------------------------------------------------------ the steps of forward

    @property
    def kd_active(self) -> bool:
        """Whether ``forward`` adds a KD term (a KD loss other than ``none``, a non-zero weight)."""
        return self.kd_weight != 0.0 and not _is_none_loss(self.kd_loss)

    @property
    def feature_kd(self) -> bool:
        """Whether the KD loss reads intermediate features (feature taps on both models)."""
        return self._student_tap is not None

    def remove_taps(self) -> None:
        """Detach the feature hooks from both models (a model that will not be run again)."""
        for tap in (self._teacher_tap, self._student_tap):
            if tap is not None:
                tap.remove()

    def student_estimate(self, speech_mix: torch.Tensor,
                         speech_mix_lengths: Optional[torch.Tensor] = None,
                         **kwargs) -> StudentEstimate:
        """Run the student's ESPnet forward unchanged: its task loss, stats and weight, and the
        signals its task loss compared (plus its tapped features when the KD term needs them)."""
        with capture_estimate(self.student) as cap:
            (loss, stats, weight), features = run_tapped(
                self._student_tap, self.kd_active, self.student,
                speech_mix, speech_mix_lengths, **kwargs)
        return StudentEstimate(
            loss=loss, stats={k: v for k, v in stats.items() if k != "loss"}, weight=weight,
            estimate=cap.speech_pre[0], reference=cap.speech_ref[0],
            lengths=cap.speech_lengths, features=features)

    def teacher_forward(
        self, speech_mix: torch.Tensor, speech_mix_lengths: torch.Tensor, **kwargs
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """The teacher's estimate [B, L] and its task-loss stats, without gradient."""
        return frozen_estimate(self.teacher, speech_mix, speech_mix_lengths, **kwargs)

    def teacher_estimate(self, speech_mix: torch.Tensor,
                         speech_mix_lengths: Optional[torch.Tensor] = None,
                         cached: Optional[torch.Tensor] = None, **kwargs) -> TeacherEstimate:
        """The teacher's estimate of the batch, with its tapped features for feature KD.

        ``cached``: the teacher-output cache's stream ``teacher_ref1`` [B, L] for this batch; it
        replaces the teacher's forward (no stats, and no features: feature KD cannot use it).
        """
        if cached is not None:
            if self._teacher_tap is not None:
                raise ValueError("a teacher-output cache cannot serve feature KD (atkl)")
            # trimmed like the references, to the padded batch (a shape: no device sync per step)
            return TeacherEstimate(estimate=cached[..., :speech_mix.shape[-1]].float(), stats={})
        (estimate, stats), features = run_tapped(
            self._teacher_tap, True, self.teacher_forward, speech_mix, speech_mix_lengths,
            **kwargs)
        return TeacherEstimate(estimate=estimate, stats=stats, features=features)

    def kd_term(self, student: StudentEstimate, teacher: TeacherEstimate) -> KDTerm:
        """The KD loss between the two estimates (and features), unweighted, with its stats.

        A non-finite teacher estimate skips the term: the loss is 0 and every stat of the KD
        loss (``kd_loss.stat_keys()``) is NaN, so the stat keys stay the same on every batch.
        """
        length = min(student.estimate.shape[-1], teacher.estimate.shape[-1],
                     student.reference.shape[-1])
        if not torch.isfinite(teacher.estimate).all():
            logging.warning("non-finite teacher output: KD term skipped for this batch")
            nan = torch.full((), float("nan"), device=student.estimate.device)
            return KDTerm(loss=student.loss.new_zeros(()), skipped=True,
                          stats={key: nan.clone() for key in self.kd_loss.stat_keys()})
        feats = {}
        if student.features is not None:
            feats = dict(student_feats=student.features, teacher_feats=teacher.features)
        loss, stats = self.kd_loss(
            student.estimate[..., :length],  # [B, L]
            teacher.estimate[..., :length],  # [B, L]
            student.reference[..., :length],  # [B, L]
            student.lengths.clamp(max=length),  # [B]
            **feats,
        )
        return KDTerm(loss=loss, stats=stats, skipped=False)

    def forward(
        self,
        speech_mix: torch.Tensor,
        speech_mix_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], torch.Tensor]:
        # teacher-output cache (dispatch.models.teacher_cache): an extra stream, not for ESPnet
        cached_teacher = kwargs.pop("teacher_ref1", None)  # [B, L]
        kwargs.pop("teacher_ref1_lengths", None)
        student = self.student_estimate(speech_mix, speech_mix_lengths, **kwargs)
        loss_task = student.loss
        stats = dict(student.stats)
        stats["loss_task"] = loss_task.detach()
        loss = loss_task
        if self.kd_active:
            teacher = self.teacher_estimate(speech_mix, speech_mix_lengths, cached=cached_teacher,
                                            **kwargs)
            for key, value in teacher.stats.items():
                if key != "loss":
                    stats[f"teacher_{key}"] = value
            kd = self.kd_term(student, teacher)
            skipped = 1.0 if kd.skipped else 0.0
            loss = loss_task + self.kd_weight * kd.loss
            stats["kd_grad_ratio"] = self.kd_grad_ratio(loss_task, kd.loss, skipped)
            stats["loss_kd"] = (loss_task.new_tensor(float("nan")) if kd.skipped
                                else kd.loss.detach())
            stats["kd_skipped"] = loss_task.new_tensor(skipped)
            for key, value in kd.stats.items():
                stats[f"kd_{key}"] = value.detach() if torch.is_tensor(value) else value
        stats["loss"] = loss.detach()
        return force_gatherable((loss, stats, student.weight), loss.device)

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
