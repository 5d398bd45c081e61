"""Tests of the data preparation of every recipe: mini (synthetic), vctk_noisy and dns_ins20 (fake
corpora with the real folder layout, built from real speech), custom (real speech and real noise)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dispatch.bin import make_mini_corpus, prep_custom, prep_dns, prep_vctk
from dispatch.data.audio import resample
from dispatch.data.scp import read_scp, validate_data_dir
from helpers import REPO, SHARED_DATA, speech_folder  # speech_folder: real p232 pairs, else synthetic

DNS3 = SHARED_DATA / "dns2020_test_3"
needs_dns = pytest.mark.skipif(not DNS3.is_dir(), reason=f"DNS2020 test pairs not found at {DNS3}")
# Real noisy names of the three shared DNS2020 no_reverb test pairs (challenge repository).
DNS_NOISY_NAMES = {"fileid_44": "clnsp17_birds_413745_3_snr2_tl-23_fileid_44.wav",
                   "fileid_58": "clnsp149_SjEWn2DhLDs_snr0_tl-23_fileid_58.wav",
                   "fileid_170": "clnsp205_wind_407027_1_snr1_tl-24_fileid_170.wav"}


def digest(folder: Path) -> dict[str, str]:
    """sha1 of every file under ``folder`` by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_valid(data_dir: Path, fs: int = 16000) -> dict[str, str]:
    """The data dir passes validation; all audio is mono at fs with equal noisy/clean length."""
    assert validate_data_dir(data_dir) == []
    wav, spk1 = dict(read_scp(data_dir / "wav.scp")), dict(read_scp(data_dir / "spk1.scp"))
    for utt in wav:
        a, b = sf.info(wav[utt]), sf.info(spk1[utt])
        assert a.samplerate == b.samplerate == fs and a.channels == b.channels == 1
        assert a.frames == b.frames, utt
    return wav


# ---------------------------------------------------------------- mini


def test_mini_sizes_and_determinism(tmp_path: Path) -> None:
    opts = ["--n_train", "6", "--n_valid", "2", "--n_test", "2", "--duration", "0.8"]
    for run in ("a", "b"):
        assert make_mini_corpus.main(opts + ["--data_dir", str(tmp_path / run / "data"),
                                             "--audio_dir", str(tmp_path / "wav" / run)]) == 0
    wav_a = {s: assert_valid(tmp_path / "a/data" / s) for s in ("train", "valid", "test")}
    assert [len(w) for w in wav_a.values()] == [6, 2, 2]
    assert digest(tmp_path / "wav/a") == digest(tmp_path / "wav/b")  # same seed -> identical audio
    for s in ("train", "valid", "test"):
        assert (tmp_path / "a/data" / s / "noise1.scp").is_file()
    noisy, fs = sf.read(next(iter(wav_a["train"].values())))
    assert fs == 16000 and len(noisy) == 12800 and 0.0 < np.abs(noisy).max() < 1.0
    kinds = {u.rsplit("_", 1)[1] for u in wav_a["train"]}
    assert kinds == {"white", "pink", "brown", "babble", "hum", "clicks"}

    # Another seed changes the audio; a bigger train set leaves valid/test unchanged.
    assert make_mini_corpus.main(opts + ["--seed", "1", "--data_dir", str(tmp_path / "c/data"),
                                         "--audio_dir", str(tmp_path / "wav/c")]) == 0
    assert digest(tmp_path / "wav/c/test") != digest(tmp_path / "wav/a/test")
    assert make_mini_corpus.main(["--n_train", "7"] + opts[2:] + ["--data_dir", str(tmp_path / "d/data"),
                                                                 "--audio_dir", str(tmp_path / "wav/d")]) == 0
    assert digest(tmp_path / "wav/d/test") == digest(tmp_path / "wav/a/test")


def test_mini_snr_and_mixture(tmp_path: Path) -> None:
    assert make_mini_corpus.main(["--n_train", "6", "--n_valid", "0", "--n_test", "0", "--duration", "0.8",
                                  "--data_dir", str(tmp_path / "data"), "--audio_dir", str(tmp_path / "wav")]) == 0
    assert not (tmp_path / "data/valid").exists()
    d = tmp_path / "data/train"
    scps = [dict(read_scp(d / n)) for n in ("wav.scp", "spk1.scp", "noise1.scp")]
    for utt in scps[0]:
        noisy, clean, noise = (sf.read(s[utt])[0] for s in scps)
        assert np.abs(noisy - clean - noise).max() < 1e-3  # noisy = clean + noise (16-bit rounding)
        snr = 10 * np.log10(np.sum(clean ** 2) / np.sum(noise ** 2))
        assert -5.5 < snr < 15.5, (utt, snr)


def test_mini_data_sh(tmp_path: Path) -> None:
    """The recipe's local/data.sh runs from the recipe dir and passes options on."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    script = REPO / "egs/mini/enh_distill1/local/data.sh"
    r = subprocess.run(["bash", str(script), "--n_train", "2", "--n_valid", "1", "--n_test", "1",
                        "--duration", "0.6"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(read_scp(tmp_path / "data/train/wav.scp")) == 2
    assert (tmp_path / "data/wav/test/clean").is_dir()


def test_mini_bad_options(capsys: pytest.CaptureFixture) -> None:
    assert make_mini_corpus.main(["--snr_low", "10", "--snr_high", "0"]) == 1
    assert "--snr_low <= --snr_high" in capsys.readouterr().err


# ---------------------------------------------------------------- vctk_noisy


def _write_48k(src: Path, dst: Path) -> None:
    x, fs = sf.read(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    sf.write(dst, resample(x, fs, 48000), 48000, subtype="PCM_16")


@pytest.fixture
def fake_vctk(tmp_path: Path) -> Path:
    """The VoiceBank+DEMAND layout at 48 kHz with 7 real p232 pairs under fake speaker ids."""
    root, vbd = tmp_path / "VCTK_NOISY", speech_folder()
    srcs = sorted((vbd / "clean").glob("*.wav"))[:7]
    names = {"train": ["p226_001", "p230_001", "p230_002", "p250_001", "p287_001"],
             "test": ["p232_001", "p257_001"]}
    i = 0
    for part, (noisy_dir, clean_dir) in {"train": ("noisy_trainset_28spk_wav", "clean_trainset_28spk_wav"),
                                         "test": ("noisy_testset_wav", "clean_testset_wav")}.items():
        for name in names[part]:
            _write_48k(srcs[i], root / clean_dir / f"{name}.wav")
            _write_48k(vbd / "noisy" / srcs[i].name, root / noisy_dir / f"{name}.wav")
            i += 1
    return root


def test_vctk_prep(fake_vctk: Path, tmp_path: Path) -> None:
    assert prep_vctk.main(["--vctk_root", str(fake_vctk), "--data_dir", str(tmp_path / "data"),
                           "--audio_dir", str(tmp_path / "wav")]) == 0
    sets = {s: assert_valid(tmp_path / "data" / s) for s in ("train", "valid", "test")}
    assert sorted(sets["train"]) == ["p230_001", "p230_002", "p250_001"]
    assert sorted(sets["valid"]) == ["p226_001", "p287_001"]  # default --valid_spk p226,p287
    assert sorted(sets["test"]) == ["p232_001", "p257_001"]
    assert (tmp_path / "data/train/spk2utt").read_text() == "p230 p230_001 p230_002\np250 p250_001\n"
    # 48 kHz -> 16 kHz gives back (nearly) the original 16 kHz recording
    orig = sf.read(sorted((speech_folder() / "clean").glob("*.wav"))[0])[0]
    back = sf.read(dict(read_scp(tmp_path / "data/valid/spk1.scp"))["p226_001"])[0]
    n = min(len(orig), len(back))
    assert abs(len(orig) - len(back)) <= 1 and np.corrcoef(orig[:n], back[:n])[0, 1] > 0.99

    assert prep_vctk.main(["--vctk_root", str(fake_vctk), "--valid_spk", "p250", "--data_dir",
                           str(tmp_path / "d2"), "--audio_dir", str(tmp_path / "wav")]) == 0
    assert [k for k, _ in read_scp(tmp_path / "d2/valid/wav.scp")] == ["p250_001"]


def test_vctk_missing_variable_and_layout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert prep_vctk.main(["--vctk_root", "", "--data_dir", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "VCTK_NOISY is not set" in err and "clean_trainset_28spk_wav" in err
    (tmp_path / "root/clean_testset_wav").mkdir(parents=True)
    assert prep_vctk.main(["--vctk_root", str(tmp_path / "root"), "--data_dir", str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing noisy_trainset_28spk_wav/, clean_trainset_28spk_wav/, noisy_testset_wav/;" in err
    assert "db.sh" in err and not (tmp_path / "data").exists()


def test_vctk_data_sh_unset_variable(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("VCTK_NOISY", None)
    r = subprocess.run(["bash", str(REPO / "egs/vctk_noisy/enh_distill1/local/data.sh")], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("ERROR: VCTK_NOISY is not set")


def test_vctk_unpaired_file(fake_vctk: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (fake_vctk / "clean_testset_wav/p232_001.wav").unlink()
    assert prep_vctk.main(["--vctk_root", str(fake_vctk), "--data_dir", str(tmp_path / "data"),
                           "--audio_dir", str(tmp_path / "wav")]) == 1
    assert "no noisy/clean partner in test, e.g. p232_001.wav" in capsys.readouterr().err


# ---------------------------------------------------------------- dns_ins20


@pytest.fixture
def fake_dns(tmp_path: Path) -> Path:
    """The DNS2020 layout: the 3 real no_reverb test pairs, and clean/noise training folders made
    from them (noise = noisy - clean)."""
    root = tmp_path / "DNS2020"
    test = root / "datasets/test_set/synthetic/no_reverb"
    for d in (test / "noisy", test / "clean", root / "datasets/clean", root / "datasets/noise"):
        d.mkdir(parents=True)
    for k, (fid, noisy_name) in enumerate(sorted(DNS_NOISY_NAMES.items())):
        (test / "noisy" / noisy_name).symlink_to(DNS3 / "noisy" / f"{fid}.wav")
        (test / "clean" / f"clean_{fid}.wav").symlink_to(DNS3 / "clean" / f"{fid}.wav")
        noisy, fs = sf.read(DNS3 / "noisy" / f"{fid}.wav")
        clean, _ = sf.read(DNS3 / "clean" / f"{fid}.wav")
        sf.write(root / f"datasets/clean/book_{k:05d}_chp_0001_reader_{k:05d}_0.wav", clean[:4 * fs], fs)
        sf.write(root / f"datasets/noise/noise_{k}.wav", (noisy - clean)[:3 * fs], fs)
    return root


@needs_dns
def test_dns_prep(fake_dns: Path, tmp_path: Path) -> None:
    opts = ["--dns_root", str(fake_dns), "--train_hours", str(4 * 3.0 / 3600), "--valid_hours", str(3.0 / 3600),
            "--segment", "3.0", "--valid_fraction", "0.34", "--snr_low", "-5", "--snr_high", "5"]
    assert prep_dns.main(opts + ["--data_dir", str(tmp_path / "data"), "--audio_dir", str(tmp_path / "wav"),
                                 "--nj", "2"]) == 0
    sets = {s: assert_valid(tmp_path / "data" / s) for s in ("train", "valid", "test")}
    assert sorted(sets["test"]) == ["fileid_170", "fileid_44", "fileid_58"]
    assert sets["test"]["fileid_44"].endswith("clnsp17_birds_413745_3_snr2_tl-23_fileid_44.wav")
    assert dict(read_scp(tmp_path / "data/test/spk1.scp"))["fileid_44"].endswith("clean_fileid_44.wav")
    assert len(sets["train"]) == 4 and len(sets["valid"]) == 1
    assert all(sf.info(p).frames == 48000 for p in sets["train"].values())
    # nj does not change the result
    assert prep_dns.main(opts + ["--data_dir", str(tmp_path / "d1"), "--audio_dir", str(tmp_path / "w1")]) == 0
    assert digest(tmp_path / "wav/train") == digest(tmp_path / "w1/train")


def test_dns_missing_variable_and_layout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert prep_dns.main(["--dns_root", ""]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DNS2020 is not set" in err and "datasets/test_set/synthetic/no_reverb" in err
    (tmp_path / "datasets/clean").mkdir(parents=True)
    assert prep_dns.main(["--dns_root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "missing datasets/noise/, datasets/test_set/synthetic/no_reverb/clean/" in err and "db.sh" in err


# ---------------------------------------------------------------- custom


@pytest.fixture
def custom_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Clean speech (nested, wav and 24 kHz flac) and real noise (noisy - clean, 8 kHz stereo too)."""
    clean_dir, noise_dir, vbd = tmp_path / "my_clean", tmp_path / "my_noise", speech_folder()
    for k, src in enumerate(sorted((vbd / "clean").glob("*.wav"))[:10]):
        x, fs = sf.read(src)
        sub = clean_dir / f"speaker{k % 2}" / "session1"
        sub.mkdir(parents=True, exist_ok=True)
        if k % 3 == 0:
            sf.write(sub / f"{src.stem}.flac", resample(x, fs, 24000), 24000)
        else:
            sf.write(sub / src.name, x, fs)
        if k < 3:
            n = sf.read(vbd / "noisy" / src.name)[0] - x
            (noise_dir / "a").mkdir(parents=True, exist_ok=True)
            if k == 2:
                sf.write(noise_dir / "a" / "n2.wav", np.stack([resample(n, fs, 8000)] * 2, axis=1), 8000)
            else:
                sf.write(noise_dir / f"n{k}.wav", n, fs)
    return clean_dir, noise_dir


def test_custom_prep(custom_folders: tuple[Path, Path], tmp_path: Path) -> None:
    clean_dir, noise_dir = custom_folders
    opts = ["--clean_dir", str(clean_dir), "--noise_dir", str(noise_dir), "--snr_low", "0", "--snr_high", "10",
            "--max_duration", "2.5", "--seed", "3"]
    assert prep_custom.main(opts + ["--data_dir", str(tmp_path / "data"), "--audio_dir", str(tmp_path / "w")]) == 0
    sets = {s: assert_valid(tmp_path / "data" / s) for s in ("train", "valid", "test")}
    assert [len(v) for v in sets.values()] == [8, 1, 1]
    all_ids = sorted(u for v in sets.values() for u in v)
    assert "speaker0-session1-p232_001" in all_ids  # id from the nested path, flac extension dropped
    for s, wav in sets.items():
        noise = dict(read_scp(tmp_path / "data" / s / "noise1.scp"))
        clean = dict(read_scp(tmp_path / "data" / s / "spk1.scp"))
        for utt in wav:
            y, c, n = sf.read(wav[utt])[0], sf.read(clean[utt])[0], sf.read(noise[utt])[0]
            assert len(y) <= int(2.5 * 16000)
            snr = 10 * np.log10(np.sum(c ** 2) / np.sum(n ** 2))
            assert -0.5 < snr < 10.5 and np.abs(y - c - n).max() < 1e-3
    # same seed, same output
    assert prep_custom.main(opts + ["--data_dir", str(tmp_path / "d2"), "--audio_dir", str(tmp_path / "w2")]) == 0
    assert digest(tmp_path / "w") == digest(tmp_path / "w2")


def test_custom_bad_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert prep_custom.main(["--clean_dir", str(tmp_path / "nope"), "--noise_dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--clean_dir" in err and "CUSTOM_CLEAN_DIR" in err
    (tmp_path / "empty").mkdir()
    assert prep_custom.main(["--clean_dir", str(tmp_path / "empty"), "--noise_dir", str(tmp_path)]) == 1
    assert "no wav/flac files in" in capsys.readouterr().err
    assert prep_custom.main(["--clean_dir", str(tmp_path), "--noise_dir", str(tmp_path), "--fractions", "1,2"]) == 1
    assert "--fractions needs 3" in capsys.readouterr().err
