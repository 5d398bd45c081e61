"""Teacher cache at scale: --nj parallel writers give the same cache as one, float16 storage halves
the size within float16 rounding, ESPnet's loader reads it as float32, sizes are recorded."""
from __future__ import annotations

import json

import kaldiio
import numpy as np
import pytest

from helpers import tiny_tasnet_config, write_enh_model


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    from dispatch.models.teacher_cache import cache_teacher
    from dispatch.perf.corpus import make_timing_corpus

    work = tmp_path_factory.mktemp("cache_scaling")
    make_timing_corpus(str(work / "data"), str(work / "wav"), 5, 0.5, seed=3)
    teacher = write_enh_model(work / "teacher", tiny_tasnet_config(16, 2, 32), seed=1)
    out = {}
    for name, nj, dtype in (("one", 1, "float32"), ("two", 2, "float32"), ("half", 1, "float16")):
        cache_teacher(str(teacher["config"]), str(teacher["model_file"]), str(work / "data"),
                      str(work / name), nj=nj, dtype=dtype)
        out[name] = work / name
    return out


def load(cache_dir):
    return dict(kaldiio.load_scp(str(cache_dir / "teacher1.scp")))


def test_parallel_writers_give_the_same_cache(caches):
    one, two = load(caches["one"]), load(caches["two"])
    assert list(one) == list(two) == sorted(one) and len(one) == 5
    for utt in one:
        np.testing.assert_array_equal(one[utt], two[utt])
    assert sorted(p.name for p in caches["two"].glob("*.ark")) == ["teacher.1.ark", "teacher.2.ark"]
    assert (caches["one"] / "teacher1_shape").read_text() == (caches["two"] / "teacher1_shape").read_text()
    info = json.loads((caches["two"] / "cache_info.json").read_text())
    assert info["nj"] == 2 and info["utterances"] == 5 and info["fs"] == 16000
    assert info["audio_hours"] == pytest.approx(5 * 0.5 / 3600)
    # float32: 4 bytes a sample plus a small header per utterance
    assert 4 * 8000 * 5 < info["ark_bytes"] < 4 * 8000 * 5 + 5 * 64
    assert info["wall_seconds"] >= info["compute_wall_seconds"] > 0


def test_float16_storage_is_half_the_size_and_rounds_only(caches):
    full, half = load(caches["one"]), load(caches["half"])
    for utt, value in full.items():
        assert half[utt].dtype == np.float16 and value.dtype == np.float32
        np.testing.assert_allclose(half[utt].astype(np.float32), value, rtol=2 ** -11, atol=6e-8)
    sizes = {name: json.loads((caches[name] / "cache_info.json").read_text())["ark_bytes"]
             for name in ("one", "half")}
    assert sizes["half"] < 0.55 * sizes["one"]
    info = json.loads((caches["half"] / "cache_info.json").read_text())
    assert info["dtype"] == "float16" and info["float32_fallbacks"] == []


def test_espnet_loader_reads_float16_cache_as_float32(caches):
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset([(str(caches["half"] / "teacher1.scp"), "teacher_ref1", "kaldi_ark")])
    utt = sorted(load(caches["half"]))[0]
    _, item = dataset[utt]
    assert item["teacher_ref1"].dtype == np.float32 and item["teacher_ref1"].shape == (8000,)


def test_out_of_range_estimate_keeps_float32():
    from dispatch.models.teacher_cache import stored_array

    small, function = stored_array(np.full(4, 0.5, dtype=np.float32), "float16")
    assert small.dtype == np.float16 and function == "numpy"
    big, function = stored_array(np.array([1e5, 0.0], dtype=np.float32), "float16")
    assert big.dtype == np.float32 and function is None


def test_shards_and_bad_options(tmp_path):
    from dispatch.models.teacher_cache import CacheError, cache_teacher, shard_utts

    utts = [f"u{i}" for i in range(7)]
    blocks = shard_utts(utts, 3)
    assert [len(b) for b in blocks] == [3, 2, 2] and sum(blocks, []) == utts
    assert shard_utts(utts[:2], 5) == [["u0"], ["u1"]]
    with pytest.raises(CacheError, match="--dtype bfloat16: choose one of float32, float16"):
        cache_teacher("t.yaml", "t.pth", str(tmp_path), str(tmp_path / "c"), dtype="bfloat16")
    with pytest.raises(CacheError, match="wav.scp does not exist"):
        cache_teacher("t.yaml", "t.pth", str(tmp_path), str(tmp_path / "c"))
