"""The checkpoint names the toolkit uses, in one place.

The recipes' configs keep the best epoch by ``best_model_criterion [[valid, si_snr_loss, min]]``,
so ESPnet's trainer links it as ``valid.si_snr_loss.best.pth``: that is the default model file of
the stage driver (``--teacher_model``, ``--inference_model``), ``export_student`` and
``import_teacher``. A model trained by stock ESPnet with its default criteria has
``valid.loss.best.pth`` (and ``valid.loss.ave.pth``) instead.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CHECKPOINT = "valid.si_snr_loss.best.pth"
#: What a stock ESPnet enh training leaves with ESPnet's default best_model_criterion.
ESPNET_DEFAULT_CHECKPOINT = "valid.loss.best.pth"
#: Model files tried, in order, when none is named (``export_student``; ``dispatch.results.layout``
#: adds ``model.pth``, the name of an imported or exported model).
DEFAULT_MODEL_FILES = (DEFAULT_CHECKPOINT, ESPNET_DEFAULT_CHECKPOINT, "latest.pth")


def checkpoints_in(directory: str | os.PathLike, limit: int = 8) -> str:
    """The ``*.pth`` files of a directory, for an error message ("none" when there are none)."""
    names = sorted(p.name for p in Path(directory).glob("*.pth")) if Path(directory).is_dir() else []
    if not names:
        return "none"
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
