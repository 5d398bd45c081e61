"""The base class of every KD loss: its feature taps and the stat keys its forward reports.

A KD loss is called as ``loss, stats = module(student_wav, teacher_wav, ref_wav, lengths)``
(doc/CONVENTIONS.md). ``stat_keys()`` names the keys of ``stats`` (without the model's ``kd_``
prefix) from the configuration alone, so a caller can report a batch without running the loss,
e.g. as NaN when the teacher's output is not finite. The keys are the same on every batch.
"""
from __future__ import annotations

from torch import nn


class KDLoss(nn.Module):
    """A KD loss module: ``feature_pairs`` (``[]`` for output-only KD) and ``stat_keys()``.

    ``STAT_KEYS`` lists the stats of a method whose keys do not depend on its configuration;
    a method whose keys do (DISPatch, MSSP) overrides :meth:`stat_keys`.
    """

    STAT_KEYS: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.feature_pairs: list[tuple[str, str]] = []

    def stat_keys(self) -> tuple[str, ...]:
        """The keys of the stats dict that ``forward`` returns, in its order."""
        return tuple(self.STAT_KEYS)
