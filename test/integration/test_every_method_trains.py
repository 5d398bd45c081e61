"""Every registered KD method trains a tiny student through ``dispatch.bin.enh_distill_train``.

The runs are in-process (ESPnet's trainer, CPU, one epoch of a few chunks) to keep the cost of
importing ESPnet out of each of them.
"""

from __future__ import annotations

import logging

import pytest
import torch
import yaml

from helpers import espnet_data_opts, make_student_workdir
from dispatch.kd import list_kd_losses

CONF = {
    "none": {},
    "l2_mag": {"scale_to_ref": True},
    "sisnr": {},
    "dfkd": {"beta": 0.5},
    "dispatch": {"base": "dfkd", "patch_bins": 20, "k": 0.5, "select": "topk_positive"},
    "mssp": {"base": "dfkd", "low_patch_bins": 10, "high_patch_bins": 40, "split": "adaptive"},
    "atkl": {"layer_pairs": [["separator.tcn.network.1", "separator.tcn.network.1"],
                             ["separator.tcn.network.2.0.2", "separator.tcn.network.2.0.0"]]},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = tmp_path_factory.mktemp("methods")
    make_student_workdir(work, 3, 2)
    return work


def test_the_table_covers_every_registered_method():
    assert set(CONF) == set(list_kd_losses())


@pytest.mark.parametrize("method", sorted(CONF))
def test_method_trains_a_student(method, work, teacher_files):
    from dispatch.bin.enh_distill_train import main

    out = work / f"exp_{method}"
    main(["--config", str(work / "student.yaml"), "--output_dir", str(out),
          "--teacher_config", str(teacher_files["config"]),
          "--teacher_model_file", str(teacher_files["model_file"]),
          "--kd_loss", method, "--kd_loss_conf", yaml.safe_dump(CONF[method], default_flow_style=True),
          "--ngpu", "0", "--num_workers", "0", "--max_epoch", "1", "--batch_size", "2",
          "--iterator_type", "chunk", "--chunk_length", "8000", "--seed", "0",
          "--use_tensorboard", "false", "--use_matplotlib", "false",
          "--best_model_criterion", "valid,loss,min"] + espnet_data_opts(work))
    logging.getLogger().handlers.clear()  # ESPnet's per-run handler
    state = torch.load(out / "1epoch.pth", map_location="cpu")
    start = torch.load(teacher_files["model_file"], map_location="cpu")
    assert all(torch.equal(state[f"teacher.{k}"], v) for k, v in start.items())
    student = {k: v for k, v in state.items() if k.startswith("student.")}
    assert student and all(torch.isfinite(v).all() for v in student.values())
    assert (out / "valid.loss.best.pth").exists()
