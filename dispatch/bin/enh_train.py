#!/usr/bin/env python3
"""ESPnet's ``enh_train`` with the toolkit's extra separators registered (e.g. ``separator: uformer``).

    python -m dispatch.bin.enh_train --config conf/tuning/teacher_uformer.yaml ...

Every option is ``espnet2.bin.enh_train``'s; the output is a stock ESPnet exp dir. Run by hand,
it logs to ``OUTPUT_DIR/train.log`` as well as to the console, and logs the optimizer steps per
epoch at the start (see ``dispatch.recipe.training``).
"""
from typing import Optional, Sequence

from dispatch.recipe.joblog import console_tee


def get_parser():
    import dispatch.models  # noqa: F401  (registers extra separators before the parser is built)
    from espnet2.tasks.enh import EnhancementTask

    return EnhancementTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    with console_tee():  # installed before ESPnet is imported, so its import notes are caught
        from dispatch.recipe.training import prepare_training
        from dispatch.tasks.enh import SafeEnhancementTask

        args = get_parser().parse_args(cmd)
        prepare_training(args, "enh_train")
        SafeEnhancementTask.main(args=args)  # ESPnet's task with crash-safe checkpoints


if __name__ == "__main__":
    main()
