#!/usr/bin/env python3
"""ESPnet's ``enh_train`` with the toolkit's extra separators registered (e.g. ``separator: uformer``).

    python -m dispatch.bin.enh_train --config conf/tuning/teacher_uformer.yaml ...

Every option is ``espnet2.bin.enh_train``'s; the output is a stock ESPnet exp dir.
"""
from typing import Optional, Sequence

import dispatch.models  # noqa: F401  (registers extra separators before the parser is built)
from espnet2.tasks.enh import EnhancementTask


def get_parser():
    return EnhancementTask.get_parser()


def main(cmd: Optional[Sequence[str]] = None) -> None:
    EnhancementTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
