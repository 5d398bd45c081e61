#!/usr/bin/env python3
"""Train a speech-enhancement student by knowledge distillation from a frozen teacher.

Takes every option of ``espnet2.bin.enh_train`` (they describe the student) plus
``--teacher_config``, ``--teacher_model_file``, ``--kd_loss``, ``--kd_loss_conf`` and
``--kd_weight``. Run ``python -m dispatch.bin.enh_distill_train --help`` for the full list.
"""

from typing import Optional, Sequence

from dispatch.tasks.enh_distill import EnhDistillTask


def get_parser():
    return EnhDistillTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    EnhDistillTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
