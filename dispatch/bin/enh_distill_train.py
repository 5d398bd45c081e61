#!/usr/bin/env python3
"""Train a speech-enhancement student by knowledge distillation from a frozen teacher.

Takes every option of ``espnet2.bin.enh_train`` (they describe the student) plus
``--teacher_config``, ``--teacher_model_file``, ``--kd_loss``, ``--kd_loss_conf`` and
``--kd_weight``. Run ``python -m dispatch.bin.enh_distill_train --help`` for the full list.
Run by hand, it logs to ``OUTPUT_DIR/train.log`` as well as to the console, and logs the
optimizer steps per epoch at the start (see ``dispatch.recipe.training``).
"""

from typing import Optional, Sequence

from dispatch.recipe.joblog import console_tee


def get_parser():
    from dispatch.tasks.enh_distill import EnhDistillTask

    return EnhDistillTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    with console_tee():  # installed before ESPnet is imported, so its import notes are caught
        from dispatch.recipe.training import prepare_training
        from dispatch.tasks.enh_distill import EnhDistillTask

        args = EnhDistillTask.get_parser().parse_args(cmd)
        prepare_training(args, "enh_distill_train")
        EnhDistillTask.main(args=args)


if __name__ == "__main__":
    main()
