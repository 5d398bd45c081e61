"""Teacher-output cache: cached and online teachers give the same loss; invalid caches are refused."""
from __future__ import annotations

import argparse

import kaldiio
import numpy as np
import pytest
import torch

from helpers import batch_from_pairs, full_args, real_pairs, tiny_tasnet_config, write_data_dir


@pytest.fixture(scope="module")
def cache(tmp_path_factory, teacher_files):
    from dispatch.bin.cache_teacher import main

    work = tmp_path_factory.mktemp("cache")
    pairs = real_pairs(3, seconds=0.5)  # all 0.5 s: one batch without padding
    write_data_dir(work / "train", pairs)
    count = main(["--teacher_config", str(teacher_files["config"]), "--teacher_model_file",
                  str(teacher_files["model_file"]), "--data_dir", str(work / "train"),
                  "--out_dir", str(work / "cache")])
    assert count == 3
    return {"work": work, "pairs": pairs, "scp": work / "cache" / "teacher1.scp"}


def distill_args(teacher_files, cache_scp=None, data_dir=None, **overrides):
    from dispatch.tasks.enh_distill import EnhDistillTask

    config = tiny_tasnet_config()
    config.update(teacher_config=str(teacher_files["config"]),
                  teacher_model_file=str(teacher_files["model_file"]),
                  kd_loss="mssp", kd_loss_conf={}, kd_weight=1.0)
    if data_dir is not None:
        streams = [(f"{data_dir}/wav.scp", "speech_mix", "sound"),
                   (f"{data_dir}/spk1.scp", "speech_ref1", "sound")]
        if cache_scp is not None:
            streams.append((str(cache_scp), "teacher_ref1", "kaldi_ark"))
        config["train_data_path_and_name_and_type"] = streams
    config.update(overrides)
    return full_args(config, task=EnhDistillTask)


def test_cache_files_and_atomic_layout(cache):
    out = cache["scp"].parent
    assert sorted(p.name for p in out.iterdir()) == ["cache_info.json", "teacher.ark",
                                                     "teacher1.scp", "teacher1_shape"]
    entries = dict(kaldiio.load_scp(str(cache["scp"])))
    assert sorted(entries) == sorted(p[0] for p in cache["pairs"])
    for utt, noisy, _ in cache["pairs"]:
        assert entries[utt].dtype == np.float32 and entries[utt].shape == noisy.shape


@pytest.mark.parametrize("kd_loss", ["mssp", "l2_mag"])
def test_cached_teacher_gives_the_online_loss(cache, teacher_files, kd_loss):
    from dispatch.tasks.enh_distill import EnhDistillTask

    torch.manual_seed(0)
    model = EnhDistillTask.build_model(distill_args(teacher_files, kd_loss=kd_loss))
    model.eval()
    batch = batch_from_pairs(cache["pairs"])
    entries = dict(kaldiio.load_scp(str(cache["scp"])))
    cached = torch.stack([torch.from_numpy(np.array(entries[p[0]])) for p in cache["pairs"]])  # [B, L]
    with torch.no_grad():
        online, stats_online, _ = model(**batch)
        offline, stats_cached, _ = model(**batch, teacher_ref1=cached,
                                         teacher_ref1_lengths=batch["speech_mix_lengths"])
    torch.testing.assert_close(offline, online, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stats_cached["loss_kd"], stats_online["loss_kd"], rtol=1e-5, atol=1e-6)
    assert "teacher_si_snr_loss" in stats_online and "teacher_si_snr_loss" not in stats_cached


def test_cache_is_an_optional_stream():
    from dispatch.tasks.enh_distill import EnhDistillTask

    assert "teacher_ref1" in EnhDistillTask.optional_data_names(train=True)


def refusal(args):
    from dispatch.models.teacher import DistillSetupError
    from dispatch.models.teacher_cache import check_teacher_cache

    with pytest.raises(DistillSetupError) as exc:
        check_teacher_cache(args)
    message = str(exc.value)
    assert "\n" not in message and "teacher cache" in message
    return message


def test_valid_cache_passes(cache, teacher_files):
    from dispatch.models.teacher_cache import check_teacher_cache

    check_teacher_cache(distill_args(teacher_files, cache["scp"], cache["work"] / "train"))
    check_teacher_cache(distill_args(teacher_files))  # no cache stream: nothing to check


def test_refusals(cache, teacher_files, tmp_path):
    scp, train = cache["scp"], cache["work"] / "train"
    assert "atkl" in refusal(distill_args(teacher_files, scp, train, kd_loss="atkl",
                                          kd_loss_conf={"layer_pairs": [["encoder", "encoder"]]}))
    assert "dynamic_mixing" in refusal(distill_args(teacher_files, scp, train,
                                                    preprocessor="dynamic_mixing"))
    line = refusal(distill_args(teacher_files, scp, train, preprocessor="enh",
                                preprocessor_conf={"noise_scp": "noise.scp"}))
    assert "noise_scp" in line
    line = refusal(distill_args(teacher_files, scp, train, preprocessor="enh",
                                speech_volume_normalize="0.5_1.0"))
    assert "speech_volume_normalize" in line
    sp = write_data_dir(tmp_path / "train_sp", cache["pairs"])
    assert "_sp" in refusal(distill_args(teacher_files, scp, sp))
    # an utterance missing from the cache
    bigger = write_data_dir(tmp_path / "train_more", real_pairs(4, seconds=0.5))
    line = refusal(distill_args(teacher_files, scp, bigger))
    assert "1 of 4" in line and "not in it" in line
    # a cached length that differs from the mixture's
    shorter = write_data_dir(tmp_path / "train_short", [(u, n[:7000], c[:7000])
                                                       for u, n, c in cache["pairs"]])
    line = refusal(distill_args(teacher_files, scp, shorter))
    assert "cached 8000" in line and "mixture 7000" in line


def test_train_main_refuses_with_one_line(cache, teacher_files, tmp_path, capsys):
    import yaml

    from dispatch.bin.enh_distill_train import main

    cfg = tmp_path / "student.yaml"
    cfg.write_text(yaml.safe_dump(tiny_tasnet_config()))
    train = cache["work"] / "train"
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(cfg), "--output_dir", str(tmp_path / "exp"),
              "--teacher_config", str(teacher_files["config"]),
              "--teacher_model_file", str(teacher_files["model_file"]), "--kd_loss", "atkl",
              "--kd_loss_conf", "{layer_pairs: [[encoder, encoder]]}",
              "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech_mix,sound",
              "--train_data_path_and_name_and_type", f"{train}/spk1.scp,speech_ref1,sound",
              "--train_data_path_and_name_and_type", f"{cache['scp']},teacher_ref1,kaldi_ark"])
    assert exc.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("enh_distill_train: error: teacher cache") and "atkl" in line
