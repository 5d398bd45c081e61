"""Every KD loss declares its stat keys from its conf alone, and they are the keys its forward returns.

The distillation model reports a batch with a non-finite teacher as NaN stats under these keys
without running the loss, so a declared key set that differs from the forward's would change the
stat keys from one batch to the next (which DDP's all-reduce of stats does not allow).
"""
import pytest
import torch

from dispatch.kd import KD_LOSSES, build_kd_loss

# (name, conf) for every registered loss, over the confs that change which stats come back
CONFS = [
    ("none", {}),
    ("l2_mag", {}),
    ("l2_mag", {"scale_to_ref": True}),
    ("sisnr", {}),
    ("dfkd", {}),
    ("dfkd", {"crossover_floor_hz": 500.0}),
    ("dispatch", {"base": "l2_mag"}),
    ("dispatch", {"base": "l2_mag", "select": "positive", "patch_frames": 2}),
    ("dispatch", {"base": "dfkd"}),
    ("dispatch", {"base": "dfkd", "bands": "pooled"}),
    ("dispatch", {"base": "dfkd", "crossover_floor_hz": 300.0, "select": "topk_positive"}),
    ("dispatch", {"base": "dfkd", "bands": "pooled", "select": "positive"}),
    ("mssp", {}),
    ("mssp", {"base": "l2_mag"}),
    ("mssp", {"split": "fixed"}),
    ("mssp", {"split": "fixed", "base": "l2_mag", "select": "topk_positive"}),
    ("mssp", {"crossover_floor_hz": 500.0, "select": "positive", "patch_frames": 3}),
    ("atkl", {}),
    ("atkl", {"layer_pairs": [["enc", "enc"]], "output_weight": 0.0}),
    ("atkl", {"layer_pairs": [["a", "b"], {"teacher": "c", "student": "d"}],
              "layouts": [{}, {"student_channel_dim": 2, "student_time_dim": 1}]}),
]


def tiny_features(loss_module, batch: int) -> dict:
    """Small random feature maps for the module's layer pairs (none for output-only losses)."""
    if not loss_module.feature_pairs:
        return {}
    generator = torch.Generator().manual_seed(3)
    student, teacher = [], []
    for layout in loss_module.layouts:
        teacher.append(torch.randn(batch, 6, 4, 9, generator=generator))  # [B, C, F, T]
        if layout["student_time_dim"] == 1:
            student.append(torch.randn(batch, 7, 5, generator=generator))  # [B, T, C]
        else:
            student.append(torch.randn(batch, 4, 7, generator=generator))  # [B, C, T]
    return {"student_feats": student, "teacher_feats": teacher}


def test_every_registered_loss_is_covered():
    assert {name for name, _ in CONFS} == set(KD_LOSSES)


@pytest.mark.parametrize("name,conf", CONFS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFS)])
def test_declared_stat_keys_are_the_forward_keys(name, conf):
    generator = torch.Generator().manual_seed(0)
    ref = torch.randn(2, 4000, generator=generator)  # [B, L]
    teacher = ref + 0.1 * torch.randn(2, 4000, generator=generator)  # [B, L]
    student = (ref + 0.3 * torch.randn(2, 4000, generator=generator)).requires_grad_(True)
    lengths = torch.tensor([4000, 2900])
    loss_module = build_kd_loss(name, **conf)
    declared = loss_module.stat_keys()  # before any forward
    assert isinstance(declared, tuple) and len(set(declared)) == len(declared)
    assert all(isinstance(key, str) and not key.startswith("kd_") for key in declared)
    loss, stats = loss_module(student, teacher, ref, lengths, **tiny_features(loss_module, 2))
    assert set(stats) == set(declared)
    assert loss_module.stat_keys() == declared
