"""Tests of the stage-2 data check (python -m dispatch.bin.check_data): one test data dir holds one
utterance per bad kind; the check must report all of them at once, and --auto_fix must fix or drop each."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dispatch.bin import check_data
from dispatch.data.scp import read_scp, validate_data_dir

FS = 16000


def _tone(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / FS) + 0.01 * rng.standard_normal(n)


def _pair(root: Path, utt: str, noisy=None, clean=None, fs_noisy: int = FS, fs_clean: int = FS,
          subtype: str = "PCM_16") -> tuple[str, str]:
    """Write noisy/clean files (defaults: 0.5 s tones) and return their paths."""
    paths = []
    for kind, x, fs in (("noisy", noisy, fs_noisy), ("clean", clean, fs_clean)):
        x = _tone(FS // 2, zlib.crc32(utt.encode()) % 1000) if x is None else x
        p = root / kind / f"{utt}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, x, fs, subtype=subtype)
        paths.append(str(p))
    return paths[0], paths[1]


def _data_dir(root: Path, pairs: dict[str, tuple[str, str]], name: str = "data") -> Path:
    d = root / name
    d.mkdir()
    ids = sorted(pairs)
    (d / "wav.scp").write_text("".join(f"{u} {pairs[u][0]}\n" for u in ids))
    (d / "spk1.scp").write_text("".join(f"{u} {pairs[u][1]}\n" for u in ids))
    (d / "utt2spk").write_text("".join(f"{u} {u.split('_')[0]}\n" for u in ids))
    spk: dict[str, list[str]] = {}
    for u in ids:
        spk.setdefault(u.split("_")[0], []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk.items())))
    return d


def test_clean_dir_passes_and_out_dir_keeps_paths(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pairs = {f"s_{i}": _pair(tmp_path, f"s_{i}") for i in range(3)}
    d = _data_dir(tmp_path, pairs)
    assert check_data.main([str(d)]) == 0
    out = tmp_path / "dump"
    assert check_data.main([str(d), "--out_dir", str(out)]) == 0
    assert (out / "wav.scp").read_text() == (d / "wav.scp").read_text()   # untouched: original paths
    assert (out / "spk2utt").read_text() == "s s_0 s_1 s_2\n"
    assert "kept 3 utterances" in (out / "check_data.log").read_text()
    assert validate_data_dir(out) == []
    assert "3 utterances OK" in capsys.readouterr().out


@pytest.fixture
def bad_dir(tmp_path: Path) -> Path:
    """One utterance per bad kind, plus two good ones."""
    n = FS // 2
    clipped = np.clip(_tone(n, 1) * 20, -1, 1)
    nan = _tone(n, 2)
    nan[100] = np.nan
    stereo = np.stack([_tone(n, 3), _tone(n, 4)], axis=1)
    pairs = {
        "a_good": _pair(tmp_path, "a_good"),
        "b_missing": (str(tmp_path / "nowhere.wav"), _pair(tmp_path, "b_missing")[1]),
        "c_unreadable": _pair(tmp_path, "c_unreadable"),
        "d_rate": _pair(tmp_path, "d_rate", noisy=_tone(FS, 5), clean=_tone(FS, 6), fs_noisy=32000, fs_clean=32000),
        "e_stereo": _pair(tmp_path, "e_stereo", noisy=stereo),
        "f_length": _pair(tmp_path, "f_length", clean=_tone(n + 240, 7)),  # 15 ms: trimmed
        "g_nan": _pair(tmp_path, "g_nan", noisy=nan, subtype="FLOAT"),
        "h_zero": _pair(tmp_path, "h_zero", clean=np.zeros(n)),
        "i_clip": _pair(tmp_path, "i_clip", noisy=clipped),
        "j_good": _pair(tmp_path, "j_good"),
        "k_nospk1": _pair(tmp_path, "k_nospk1"),
        "l_near": _pair(tmp_path, "l_near", clean=_tone(n - 5, 8)),   # 5 samples shorter: within tolerance
    }
    Path(pairs["c_unreadable"][0]).write_bytes(b"not a wav file at all")
    d = _data_dir(tmp_path, pairs)
    lines = (d / "spk1.scp").read_text().splitlines()
    (d / "spk1.scp").write_text("\n".join(ln for ln in lines if not ln.startswith("k_nospk1")) + "\n")
    wav = (d / "wav.scp").read_text().splitlines()
    wav = [wav[1], wav[0]] + wav[1:]               # unsorted, and b_missing twice
    (d / "wav.scp").write_text("\n".join(wav) + "\n")
    return d


def test_reports_every_problem_at_once(bad_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dump"
    assert check_data.main([str(bad_dir), "--out_dir", str(out)]) == 1
    err = capsys.readouterr().err
    expected = {
        "b_missing": "file not found", "c_unreadable": "unreadable", "d_rate": "sample rate 32000 Hz, expected 16000",
        "e_stereo": "2 channels, expected mono", "f_length": "differs from wav.scp 0.500 s by more than 0.01 s",
        "g_nan": "NaN or Inf", "h_zero": "all-zero file", "i_clip": "heavy clipping",
        "k_nospk1": "id missing from this file",
    }
    for utt, reason in expected.items():
        assert any(ln.strip().startswith(utt) and reason in ln for ln in err.splitlines()), (utt, err)
    assert "wav.scp: not sorted" in err and "b_missing  wav.scp: duplicate id (2 entries)" in err
    for good in ("a_good", "j_good", "l_near"):
        assert good not in err
    assert "summary:" in err and "--auto_fix" in err
    assert not out.exists()  # nothing is written when the check fails


def test_auto_fix(bad_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "dump"
    assert check_data.main([str(bad_dir), "--auto_fix", "--out_dir", str(out), "--nj", "2"]) == 0
    stdout = capsys.readouterr().out
    wav, spk1 = dict(read_scp(out / "wav.scp")), dict(read_scp(out / "spk1.scp"))
    assert sorted(wav) == ["a_good", "d_rate", "e_stereo", "f_length", "j_good", "l_near"]
    assert validate_data_dir(out) == []
    for utt in wav:
        a, b = sf.info(wav[utt]), sf.info(spk1[utt])
        assert a.samplerate == b.samplerate == FS and a.channels == b.channels == 1 and a.frames == b.frames
    orig = dict(read_scp(bad_dir / "wav.scp"))
    assert wav["a_good"] == orig["a_good"]                           # untouched file keeps its path
    assert wav["d_rate"].startswith(str(out / "audio" / "wav"))      # fixed file written under out_dir
    assert sf.info(wav["d_rate"]).frames == FS // 2
    assert sf.info(wav["f_length"]).frames == FS // 2 and wav["f_length"] == orig["f_length"]
    assert sf.info(spk1["l_near"]).frames == FS // 2 - 5 == sf.info(wav["l_near"]).frames
    log = (out / "check_data.log").read_text()
    for text in ("d_rate  wav.scp: resampled 32000 -> 16000 Hz", "e_stereo  wav.scp: downmixed 2 channels",
                 "f_length  spk1.scp: trimmed to 8000 samples", "g_nan  wav.scp: NaN or Inf", "-> drop",
                 "l_near: lengths [7995, 8000] samples within tolerance"):
        assert text in log and text in stdout, text
    assert "kept 6 utterances" in log and "6 utterances OK, 12 problem(s) fixed" in stdout
    # the fixed dir passes a second check as it is
    assert check_data.main([str(out)]) == 0


def test_within_tolerance_is_not_an_error(tmp_path: Path) -> None:
    d = _data_dir(tmp_path, {"x_1": _pair(tmp_path, "x_1", clean=_tone(FS // 2 - 80, 1))})
    assert check_data.main([str(d), "--length_tolerance", "0.01"]) == 0       # 5 ms
    assert check_data.main([str(d), "--length_tolerance", "0.001"]) == 1


def test_fatal_and_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert check_data.main([str(tmp_path / "none")]) == 1
    assert "not a directory" in capsys.readouterr().err
    d = _data_dir(tmp_path, {"x_1": _pair(tmp_path, "x_1")})
    (d / "spk1.scp").unlink()
    assert check_data.main([str(d)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "spk1.scp: missing" in err
    assert check_data.main([str(d), "--auto_fix"]) == 1
    assert "--auto_fix needs --out_dir" in capsys.readouterr().err


def test_everything_dropped(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = _data_dir(tmp_path, {"z_1": _pair(tmp_path, "z_1", clean=np.zeros(100))})
    (d / "utt2spk").unlink()
    assert check_data.main([str(d), "--auto_fix", "--out_dir", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "no utterance is left" in err and "all-zero file" in err and "utt2spk: missing" in err


def test_auto_fix_drops_pairs_too_far_apart_to_trim(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Beyond max(20 ms, 1 % of the longer file) the files are not the same recording: dropped."""
    pairs = {"a_half": _pair(tmp_path, "a_half", clean=_tone(FS // 4, 7)),  # 0.5 s vs 0.25 s: dropped
             "b_ok": _pair(tmp_path, "b_ok", clean=_tone(FS // 2 + 300, 7)),  # 18.75 ms: trimmed
             # 56 ms on 3 s: above 20 ms and 1 % (30.6 ms): dropped
             "c_long": _pair(tmp_path, "c_long", noisy=_tone(FS * 3, 1), clean=_tone(FS * 3 + 900, 7))}
    data = tmp_path / "data"
    data.mkdir()
    for name in ("wav.scp", "spk1.scp", "utt2spk", "spk2utt"):
        rows = {"wav.scp": 0, "spk1.scp": 1}
        lines = [f"{u} {p[rows[name]]}" if name in rows else f"{u} {u}" for u, p in sorted(pairs.items())]
        (data / name).write_text("\n".join(lines) + "\n")
    out = tmp_path / "dump"
    assert check_data.main([str(data), "--auto_fix", "--out_dir", str(out)]) == 0
    assert sorted(dict(read_scp(out / "wav.scp"))) == ["b_ok"]
    log = (out / "check_data.log").read_text()
    assert "a_half" in log and "c_long" in log and "-> drop" in log
    assert "--max_trim" in check_data.get_parser().format_help()
    # a looser limit keeps the 3 s utterance (56 ms is below 2 % of 3.06 s)
    out2 = tmp_path / "dump2"
    assert check_data.main([str(data), "--auto_fix", "--out_dir", str(out2), "--max_trim_ratio", "0.02"]) == 0
    assert sorted(dict(read_scp(out2 / "wav.scp"))) == ["b_ok", "c_long"]
