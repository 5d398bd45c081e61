"""Entry points the stage driver calls: merge_config, import_teacher, collect_shapes, scp merge."""

from __future__ import annotations

import shutil

import pytest
import torch
import yaml

from helpers import real_pairs, tiny_tasnet_config, write_data_dir, write_enh_model


def test_merge_config_adds_only_kd_options(tmp_path, capsys):
    from dispatch.bin.merge_config import main

    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"separator": "tcn", "max_epoch": 3}))
    (tmp_path / "kd.yaml").write_text(yaml.safe_dump({"kd_loss": "mssp", "kd_weight": 0.5}))
    main([str(tmp_path / "s.yaml"), str(tmp_path / "kd.yaml"), "--out", str(tmp_path / "m.yaml")])
    merged = yaml.safe_load((tmp_path / "m.yaml").read_text())
    assert merged == {"separator": "tcn", "max_epoch": 3, "kd_loss": "mssp", "kd_weight": 0.5}

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"kd_loss": "mssp", "max_epoch": 9}))
    with pytest.raises(SystemExit):
        main([str(tmp_path / "s.yaml"), str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "x.yaml")])
    assert "max_epoch" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_import_teacher_from_exp_dir_and_zip(tmp_path, teacher_files):
    from dispatch.bin.import_teacher import main

    src = tmp_path / "espnet_exp"
    src.mkdir()
    shutil.copy(teacher_files["config"], src / "config.yaml")
    shutil.copy(teacher_files["model_file"], src / "valid.loss.best.pth")
    main([str(src), "--model_file", "valid.loss.best.pth", "--out", str(tmp_path / "teacher")])
    imported = torch.load(tmp_path / "teacher" / "valid.loss.best.pth")
    original = torch.load(teacher_files["model_file"])
    assert all(torch.equal(imported[k], v) for k, v in original.items())

    archive = shutil.make_archive(str(tmp_path / "packed"), "zip", src)
    main([archive, "--model_file", "model.pth", "--out", str(tmp_path / "teacher_zip")])
    assert (tmp_path / "teacher_zip" / "model.pth").is_file()


def test_import_teacher_rejects_mismatch(tmp_path, teacher_files, capsys):
    from dispatch.bin.import_teacher import main

    other = write_enh_model(tmp_path / "other", tiny_tasnet_config(channel=8, layer=1, hidden=8))
    src = tmp_path / "bad"
    src.mkdir()
    shutil.copy(teacher_files["config"], src / "config.yaml")
    shutil.copy(other["model_file"], src / "model.pth")
    with pytest.raises(SystemExit) as exc:
        main([str(src), "--model_file", "model.pth", "--out", str(tmp_path / "teacher")])
    assert exc.value.code == 2
    assert "does not match" in capsys.readouterr().err
    assert not (tmp_path / "teacher").exists()


def test_collect_shapes_and_scp_merge(tmp_path):
    from dispatch.bin.collect_shapes import main as collect
    from dispatch.bin.scp import main as scp

    pairs = real_pairs(3, seconds=0.5)
    data = write_data_dir(tmp_path / "data", pairs)
    collect([str(data), str(tmp_path / "stats")])
    lines = (tmp_path / "stats" / "speech_mix_shape").read_text().split("\n")
    assert [line.split()[1] for line in lines if line] == ["8000"] * 3

    entries = (data / "wav.scp").read_text().splitlines()
    (tmp_path / "a.scp").write_text("\n".join(entries[2:]) + "\n")
    (tmp_path / "b.scp").write_text("\n".join(entries[:2]) + "\n")
    assert scp(["merge", str(tmp_path / "m.scp"), str(tmp_path / "a.scp"), str(tmp_path / "b.scp")]) == 0
    assert (tmp_path / "m.scp").read_text().splitlines() == sorted(entries)
    assert scp(["merge", str(tmp_path / "d.scp"), str(tmp_path / "a.scp"), str(tmp_path / "a.scp")]) == 1
