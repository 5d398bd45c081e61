"""KD method library: output KD, DFKD, DISPatch, MSSP and AT-KL as padding-aware loss modules.

API (doc/CONVENTIONS.md)::

    loss_module = build_kd_loss(name, **conf)
    loss, stats = loss_module(student_wav, teacher_wav, ref_wav, lengths)       # [B, L], [B]
    loss, stats = loss_module(s, t, y, lengths, student_feats=[...], teacher_feats=[...])  # atkl

Every module is a :class:`.base.KDLoss`: it has ``feature_pairs`` (``[]`` for output-only methods,
which ignore feature kwargs) and ``stat_keys()``, the keys of its stats, known without running it.
One module per method: :mod:`.output_kd` (none, l2_mag, sisnr), :mod:`.dfkd` (with the DFKD
frequency adapter), :mod:`.dispatch_kd`, :mod:`.mssp`, :mod:`.atkl`. Shared by them:
:mod:`.stft` (padding-aware spectra; the two STFT paths in :mod:`.stft_backend`), :mod:`.patches`
(patch grid and patch distances); hooks for AT-KL in :mod:`.features`.
"""
from dispatch.kd.base import KDLoss
from dispatch.kd.dispatch_kd import knowledge_gap_score, patch_selection_map, select_patches
from dispatch.kd.features import FeatureTap
from dispatch.kd.registry import KD_LOSSES, accepted_conf_keys, build_kd_loss, list_kd_losses

__all__ = [
    "KD_LOSSES",
    "FeatureTap",
    "KDLoss",
    "accepted_conf_keys",
    "build_kd_loss",
    "knowledge_gap_score",
    "list_kd_losses",
    "patch_selection_map",
    "select_patches",
]
