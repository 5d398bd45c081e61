"""EnhDistillTask: ESPnet's enhancement task with a frozen teacher and a KD loss.

Every option of ``espnet2.bin.enh_train`` works unchanged and describes the *student*. Added:

    --teacher_config PATH       config.yaml of any ESPnet enh model (stock ESPnet or this toolkit)
    --teacher_model_file PATH   its weights (*.pth)
    --teacher_fs HZ             the teacher's sample rate, when its config does not record it
    --kd_loss NAME              one of dispatch.kd.list_kd_losses()
    --kd_loss_conf {...}        the method's options
    --kd_weight W               L = L_task + W * L_kd

Start-up checks (one-line messages, no traceback, exit status 2): the teacher files exist, the
weights match the config, the sample rates agree (``dispatch.models.teacher``), a teacher-output
cache can serve this training (``dispatch.models.teacher_cache``), and the KD method, its options
and its layer paths are known.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional, Sequence, Tuple

import torch
from espnet2.tasks.enh import EnhancementTask
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import float_or_none, int_or_none, str_or_none

from dispatch.kd import build_kd_loss
import dispatch.models.register  # noqa: F401  (separator: uformer for teacher and student)
from dispatch.models.enh_distill import ESPnetEnhDistillModel
from dispatch.models.teacher import (ESPNET_DEFAULT_FS, DistillSetupError, check_teacher_sample_rate,
                                     load_teacher)
from dispatch.models.teacher_cache import check_teacher_cache
from dispatch.tasks.trainer import SafeTrainer

#: Options this task adds to ESPnet's; ``export_student`` drops them from the student's config.
DISTILL_OPTIONS = ("teacher_config", "teacher_model_file", "teacher_fs", "kd_loss",
                   "kd_loss_conf", "kd_weight", "kd_grad_ratio_interval")


class EnhDistillTask(EnhancementTask):
    """ESPnet enhancement task whose model is ``ESPnetEnhDistillModel``."""

    #: atomic checkpoints, a resume that recovers, a clean distributed exit
    trainer = SafeTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="Knowledge distillation related")
        group.add_argument("--teacher_config", type=str_or_none, default=None,
                           help="config.yaml of the (frozen) teacher, any ESPnet enh model")
        group.add_argument("--teacher_model_file", type=str_or_none, default=None,
                           help="the teacher's model file (*.pth)")
        group.add_argument("--teacher_fs", type=int_or_none, default=None,
                           help="teacher sample rate; default: 'sample_rate' in its config")
        group.add_argument("--kd_loss", type=str, default="l2_mag",
                           help="KD method (see dispatch.kd.list_kd_losses())")
        group.add_argument("--kd_loss_conf", action=NestedDictAction, default=dict(),
                           help="options of the KD method")
        group.add_argument("--kd_weight", type=float_or_none, default=1.0,
                           help="weight of the KD loss: L = L_task + kd_weight * L_kd")
        group.add_argument("--kd_grad_ratio_interval", type=int, default=20,
                           help="every N training steps, log the stat kd_grad_ratio = "
                                "||grad(kd_weight * L_kd)|| / ||grad(L_task)|| over the student's "
                                "parameters (costs two extra backward passes on those steps; 0: never)")

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        """ESPnet's, plus ``teacher_ref1``: the teacher-output cache (dispatch.models.teacher_cache)."""
        return tuple(super().optional_data_names(train, inference)) + ("teacher_ref1",)

    @classmethod
    def build_kd_loss(cls, args: argparse.Namespace) -> torch.nn.Module:
        try:
            return build_kd_loss(args.kd_loss, **(args.kd_loss_conf or {}))
        except (ValueError, TypeError) as exc:
            raise DistillSetupError(f"--kd_loss {args.kd_loss}: {exc}") from None

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> ESPnetEnhDistillModel:
        # ESPnet applies --init inside build_model: here it reaches the student only.
        student = super().build_model(args)
        kd_loss = cls.build_kd_loss(args)
        teacher, teacher_args = load_teacher(args.teacher_config, args.teacher_model_file)
        check_teacher_sample_rate(args, teacher_args)
        try:
            return ESPnetEnhDistillModel(
                student, teacher, kd_loss, kd_weight=args.kd_weight,
                grad_ratio_interval=getattr(args, "kd_grad_ratio_interval", 0))
        except ValueError as exc:
            raise DistillSetupError(str(exc).splitlines()[0]) from None

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module
                         ) -> List[torch.optim.Optimizer]:
        """The teacher never enters the optimizer: only trainable parameters are passed on."""
        trainable = _TrainableView(model)
        return super().build_optimizers(args, trainable)

    @classmethod
    def check_distill_args(cls, args: argparse.Namespace) -> None:
        """Build the model once on CPU so that setup errors surface before any worker starts.

        A module-level ``logging.info`` with no handler would install a WARNING-level root
        handler and hide ESPnet's own logging later, so the root logger is restored afterwards.
        """
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            check_teacher_cache(args)
            check_feature_taps(cls.build_model(args), int(getattr(args, "sample_rate", ESPNET_DEFAULT_FS)))
        finally:
            for handler in root.handlers[len(handlers):]:
                root.removeHandler(handler)
            root.setLevel(level)

    @classmethod
    def main(cls, args: Optional[argparse.Namespace] = None,
             cmd: Optional[Sequence[str]] = None) -> None:
        if args is None:
            args = cls.get_parser().parse_args(cmd)
        if not args.print_config:
            try:
                cls.check_distill_args(args)
            except DistillSetupError as exc:
                print(f"enh_distill_train: error: {exc}", file=sys.stderr)
                sys.exit(2)
        super().main(args=args)


def check_feature_taps(model: ESPnetEnhDistillModel, fs: int) -> None:
    """Feature KD: a layer path can exist yet never run (ESPnet's TCN calls the children of
    ``separator.tcn.network.2``, not the module itself). One short forward finds it at start-up."""
    if not model.feature_kd:
        return
    x = 0.1 * torch.randn(1, max(fs // 4, 2048), generator=torch.Generator().manual_seed(0))
    model.eval()
    try:
        with torch.no_grad():
            model(x, torch.tensor([x.shape[-1]]), speech_ref1=x.clone())
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if first.startswith("no output stored"):
            raise DistillSetupError(
                f"--kd_loss_conf layer_pairs: {first.split(';')[0]}: the module exists but its "
                "forward is never called; pick one of its submodules or another layer") from None
        logging.warning("feature-tap check skipped: a test forward failed (%s)", first[:200])


class _TrainableView(torch.nn.Module):
    """Presents only ``requires_grad`` parameters of a model to ESPnet's optimizer builder."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self._model = [model]  # a list keeps it out of this module's own registry

    def parameters(self, recurse: bool = True):
        return (p for p in self._model[0].parameters(recurse) if p.requires_grad)

    def named_parameters(self, prefix: str = "", recurse: bool = True, **kwargs):
        return ((n, p) for n, p in self._model[0].named_parameters(prefix, recurse, **kwargs)
                if p.requires_grad)

    def named_modules(self, *args, **kwargs):
        return self._model[0].named_modules(*args, **kwargs)
