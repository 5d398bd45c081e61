"""KD method library: output KD, DFKD, DISPatch, MSSP and AT-KL as padding-aware loss modules.

API (doc/CONVENTIONS.md)::

    loss_module = build_kd_loss(name, **conf)
    loss, stats = loss_module(student_wav, teacher_wav, ref_wav, lengths)       # [B, L], [B]
    loss, stats = loss_module(s, t, y, lengths, student_feats=[...], teacher_feats=[...])  # atkl

Every module has ``feature_pairs`` (``[]`` for output-only methods, which ignore feature kwargs).
One module per method: :mod:`.output_kd` (none, l2_mag, sisnr), :mod:`.dfkd`, :mod:`.dispatch_kd`,
:mod:`.mssp`, :mod:`.atkl`; shared STFT/patch helpers in :mod:`.spectral`; hooks in :mod:`.features`.
"""
from dispatch.kd.dispatch_kd import knowledge_gap_score, patch_selection_map, select_patches
from dispatch.kd.features import FeatureTap
from dispatch.kd.registry import KD_LOSSES, accepted_conf_keys, build_kd_loss, list_kd_losses

__all__ = [
    "KD_LOSSES",
    "FeatureTap",
    "accepted_conf_keys",
    "build_kd_loss",
    "knowledge_gap_score",
    "list_kd_losses",
    "patch_selection_map",
    "select_patches",
]
