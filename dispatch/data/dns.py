"""DNS Challenge 2020 (Interspeech 2020, ESPnet's dns_ins20): training/validation mixtures synthesised
from the corpus's clean and noise folders; the test set is the synthetic no_reverb one.

Expected layout under the corpus root ($DNS2020 in db.sh), as in the challenge repository
(github.com/microsoft/DNS-Challenge, branch interspeech2020/master):
    datasets/clean/*.wav                        clean read speech (16 kHz)
    datasets/noise/*.wav                        noise clips
    datasets/test_set/synthetic/no_reverb/noisy/<...>_fileid_<N>.wav
    datasets/test_set/synthetic/no_reverb/clean/clean_fileid_<N>.wav
Test pairs are matched on ``fileid_<N>``, which is also their utterance id. The clean and noise file
lists are split by file (seeded) so validation mixtures use files that training never sees.
"""
from __future__ import annotations

import re
from pathlib import Path

from dispatch.data.audio import Utterance, at_fs, find_audio, read_mono, write_data_dir, write_wav
from dispatch.data.mixing import MixConfig, MixJob, make_mixtures, split_files
from dispatch.data.scp import DataError, pair_by_id

CLEAN, NOISE = Path("datasets/clean"), Path("datasets/noise")
TEST = Path("datasets/test_set/synthetic/no_reverb")
LAYOUT = ("expected DNS2020 (db.sh) to be the DNS Challenge 2020 root with datasets/clean/, datasets/noise/ "
          "and datasets/test_set/synthetic/no_reverb/{clean,noisy}/")
FILEID = re.compile(r"fileid_(\d+)\.wav$")


def check_layout(root: str | None) -> Path:
    """The corpus root, or DataError naming DNS2020 and the expected layout."""
    if not root:
        raise DataError(f"DNS2020 is not set: {LAYOUT}")
    path = Path(root)
    missing = [str(d) + "/" for d in (CLEAN, NOISE, TEST / "clean", TEST / "noisy") if not (path / d).is_dir()]
    if missing:
        raise DataError(f"DNS2020={root}: missing {', '.join(missing)}; {LAYOUT}")
    return path


def test_pairs(root: Path) -> list[tuple[str, Path, Path]]:
    """(fileid_N, noisy, clean) of the synthetic no_reverb test set, sorted by utterance id."""
    noisy = {f"fileid_{m.group(1)}": p for p in (root / TEST / "noisy").glob("*.wav") if (m := FILEID.search(p.name))}
    clean = {f"fileid_{m.group(1)}": p for p in (root / TEST / "clean").glob("*.wav") if (m := FILEID.search(p.name))}
    return pair_by_id(
        noisy, clean, f"DNS2020: no '*_fileid_<N>.wav' files in {root / TEST / 'noisy'}; {LAYOUT}",
        lambda ids: f"DNS2020: {len(ids)} test files have no noisy/clean partner, e.g. {ids[0]} "
                    "(noisy '*_fileid_N.wav' pairs with clean 'clean_fileid_N.wav')")


def prepare_dns(root: str | None, data_dir: str, audio_dir: str, train_hours: float = 100.0,
                valid_hours: float = 1.0, segment: float = 10.0, cfg: MixConfig = MixConfig(),
                valid_fraction: float = 0.02, nj: int = 1) -> dict[str, int]:
    """Write data_dir/{train,valid,test}; returns the set sizes."""
    path = check_layout(root)
    tests = test_pairs(path)
    clean, noise = find_audio(path / CLEAN), find_audio(path / NOISE)
    if len(clean) < 2 or len(noise) < 2:
        raise DataError(f"DNS2020: need at least 2 clean and 2 noise files, found {len(clean)} in "
                        f"{path / CLEAN} and {len(noise)} in {path / NOISE}; {LAYOUT}")
    clean_tr, clean_cv = split_files(clean, (1 - valid_fraction, valid_fraction), cfg.seed)
    noise_tr, noise_cv = split_files(noise, (1 - valid_fraction, valid_fraction), cfg.seed + 1)
    length = int(round(segment * cfg.fs))
    sizes = {}
    for code, (name, hours, c, n) in enumerate((("train", train_hours, clean_tr, noise_tr),
                                                ("valid", valid_hours, clean_cv, noise_cv))):
        count = int(round(hours * 3600 / segment))
        if count < 1:
            raise DataError(f"--{name}_hours {hours} gives no {segment} s mixture; raise it or lower --segment")
        jobs = [MixJob(f"dns_{name}_{i:07d}", (cfg.seed, code, i), length=length) for i in range(count)]
        utts = make_mixtures(jobs, c, n, cfg, str(Path(audio_dir, name)), nj=nj)
        sizes[name] = write_data_dir(Path(data_dir, name), utts)
    utts = [Utterance(u, u, at_fs(noisy, cfg.fs, Path(audio_dir, "test", "noisy", f"{u}.wav")),
                      at_fs(clean_file, cfg.fs, Path(audio_dir, "test", "clean", f"{u}.wav")))
            for u, noisy, clean_file in tests]
    sizes["test"] = write_data_dir(Path(data_dir, "test"), utts)
    return sizes
