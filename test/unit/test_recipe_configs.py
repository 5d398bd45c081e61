"""Every recipe's KD overlays build against that recipe's own teacher and student configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from helpers import REPO

RECIPES = sorted(p.parent.parent for p in (REPO / "egs").glob("*/enh_distill1/conf/kd")
                 if p.parent.parent.parent.name != "TEMPLATE")
METHODS = {"l2_mag", "sisnr", "dfkd", "dispatch_l2", "dispatch_dfkd", "mssp_dfkd", "atkl"}


def test_recipes_found():
    assert {r.parent.name for r in RECIPES} >= {"mini", "vctk_noisy", "dns_ins20", "custom"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda r: r.parent.name)
def test_recipe_has_one_overlay_per_method_and_each_builds(recipe: Path):
    from dispatch.bin.merge_config import load_yaml, merge_config
    from dispatch.models.teacher import build_enh_model
    from dispatch.kd import build_kd_loss
    from dispatch.kd.features import FeatureTap

    overlays = {p.stem: p for p in (recipe / "conf" / "kd").glob("*.yaml")}
    assert METHODS <= set(overlays), sorted(METHODS - set(overlays))
    student_conf = load_yaml(recipe / "conf" / "student.yaml")
    teacher = student = None
    for name, path in sorted(overlays.items()):
        merged = merge_config(student_conf, load_yaml(path), str(path))
        kd = build_kd_loss(merged["kd_loss"], **merged.get("kd_loss_conf", {}))
        pairs = getattr(kd, "feature_pairs", [])
        if not pairs:
            continue
        if teacher is None:
            teacher = build_enh_model(str(recipe / "conf" / "teacher.yaml")).eval()
            student = build_enh_model(str(recipe / "conf" / "student.yaml")).eval()
        taps = [FeatureTap(teacher, [t for t, _ in pairs], name="teacher"),
                FeatureTap(student, [s for _, s in pairs], name="student")]
        wav = torch.randn(1, 4000)
        with torch.no_grad():
            teacher.forward_enhance(wav, torch.tensor([4000]))
            student.forward_enhance(wav, torch.tensor([4000]))
        for tap in taps:
            assert len(tap.features) == len(pairs)  # every layer ran
            tap.remove()
