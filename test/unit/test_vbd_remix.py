"""dispatch.data.vbd_remix: train/valid/test share no utterance and no noise; bad input, one line."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from dispatch.bin.prep_vbd_remix import main as prep_main
from dispatch.data.scp import read_scp_dict as read_scp


def make_pairs(root, n=10, fs=16000, seconds=1.0):
    rng = np.random.default_rng(0)
    for i in range(n):
        clean = 0.1 * rng.standard_normal(int(seconds * fs) + 400 * i).astype(np.float32)
        noise = 0.05 * rng.standard_normal(len(clean)).astype(np.float32)
        for kind, x in (("clean", clean), ("noisy", clean + noise)):
            (root / kind).mkdir(parents=True, exist_ok=True)
            sf.write(root / kind / f"p{i:03d}.wav", x, fs, subtype="FLOAT")
    return root


def test_sets_share_no_utterance_and_no_noise(tmp_path):
    pairs = make_pairs(tmp_path / "pairs")
    data, audio = tmp_path / "data", tmp_path / "audio"
    assert prep_main(["--pairs_dir", str(pairs), "--data_dir", str(data), "--audio_dir", str(audio),
                      "--fractions", "0.6,0.2,0.2", "--mixtures", "3,2,1"]) == 0
    sources = {}
    for name in ("train", "valid", "test"):
        wav = read_scp(data / name / "wav.scp")
        sources[name] = {u.split("-m")[0] for u in wav}
        noises = {p.stem for p in (audio / name / "sources_noise").glob("*.wav")}
        assert noises == sources[name]  # each set mixes its own noises only
        for utt, path in read_scp(data / name / "spk1.scp").items():
            assert sf.info(path).frames == sf.info(wav[utt]).frames
    assert not sources["train"] & sources["valid"] and not sources["train"] & sources["test"]
    assert not sources["valid"] & sources["test"]
    test = read_scp(data / "test" / "wav.scp")
    originals = [u for u in test if "-m" not in u]  # the recorded pairs themselves
    assert len(originals) == len(sources["test"]) and len(test) == 2 * len(originals)
    assert all(test[u] == str((pairs / "noisy" / f"{u}.wav").resolve()) for u in originals)
    assert len(read_scp(data / "train" / "wav.scp")) == 3 * len(sources["train"])
    # the recorded noise of a pair is noisy - clean
    u = originals[0]
    noise, _ = sf.read(audio / "test" / "sources_noise" / f"{u}.wav")
    diff = sf.read(pairs / "noisy" / f"{u}.wav")[0] - sf.read(pairs / "clean" / f"{u}.wav")[0]
    np.testing.assert_allclose(noise, diff, atol=1e-6)


def test_recorded_pairs_are_listed_at_16k(tmp_path):
    pairs = make_pairs(tmp_path / "pairs", n=4, fs=48000, seconds=0.5)
    data, audio = tmp_path / "data", tmp_path / "audio"
    assert prep_main(["--pairs_dir", str(pairs), "--data_dir", str(data), "--audio_dir", str(audio),
                      "--fractions", "0.25,0.25,0.5", "--mixtures", "1,1,0"]) == 0
    wav, spk1 = read_scp(data / "test" / "wav.scp"), read_scp(data / "test" / "spk1.scp")
    assert len(wav) == 2 and set(wav) == set(spk1)  # only the recorded pairs (no test remixes)
    for utt in wav:
        for path in (wav[utt], spk1[utt]):
            assert sf.info(path).samplerate == 16000
        assert sf.info(wav[utt]).frames == sf.info(spk1[utt]).frames


@pytest.mark.parametrize("args,needle", [([], "set VBD_PAIRS in db.sh"),
                                         (["--fractions", "1,2"], "three comma-separated")])
def test_bad_input_is_one_line(tmp_path, capsys, args, needle):
    pairs = ["--pairs_dir", str(make_pairs(tmp_path / "p", n=4))] if "--fractions" in args else []
    assert prep_main(pairs + args + ["--data_dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
