"""Stage-2 operations on a whole checked data dir, in ESPnet's ``enh.sh`` style.

* :func:`filter_by_duration`: keep the utterances whose mixture lasts between
  ``min_wav_duration`` and ``max_wav_duration`` seconds (ESPnet's options of the same names),
  rewriting every Kaldi file of the dir in place.
* :func:`speed_perturb`: a new data dir ``<set>_sp`` with one copy of every utterance per factor;
  a factor ``f`` resamples the audio so that it plays ``f`` times faster (pitch and tempo change
  together, like sox ``speed``), [L] -> [L / f]. Mixture, references and noise are perturbed alike,
  so they stay aligned. Ids and speakers of factor ``f != 1`` get ESPnet's prefix ``sp<f>-``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Sequence

import soundfile as sf

from dispatch.data.scp import (DataError, audio_scp_names, read_scp, read_scp_dict, utt2spk_to_spk2utt,
                               write_scp)

#: Kaldi files of a data dir whose first field is the utterance id (besides the audio scps).
UTT_FILES = ("utt2spk", "utt2fs", "utt2category")


def _utt_files(data_dir: Path) -> List[str]:
    return [n for n in audio_scp_names(data_dir) + list(UTT_FILES) if (data_dir / n).is_file()]


def filter_by_duration(data_dir: str | os.PathLike, min_seconds: float, max_seconds: float
                       ) -> Dict[str, int]:
    """Drop utterances outside [min, max] seconds (``max <= 0``: no upper limit), in place.

    Returns {"kept": n, "too_short": n, "too_long": n}. Keeping none is a DataError.
    """
    data_dir = Path(data_dir)
    wavs = read_scp_dict(data_dir / "wav.scp")
    keep, short, long_ = set(), 0, 0
    for utt, path in wavs.items():
        info = sf.info(path)
        seconds = info.frames / info.samplerate
        if seconds < min_seconds:
            short += 1
        elif max_seconds > 0 and seconds > max_seconds:
            long_ += 1
        else:
            keep.add(utt)
    if not keep:
        raise DataError(f"{data_dir}: no utterance lasts between --min_wav_duration {min_seconds} "
                        f"and --max_wav_duration {max_seconds} s ({short} shorter, {long_} longer); "
                        "widen the range")
    if len(keep) < len(wavs):
        for name in _utt_files(data_dir):
            write_scp(data_dir / name, [e for e in read_scp(data_dir / name) if e[0] in keep])
        utt2spk = read_scp(data_dir / "utt2spk") if (data_dir / "utt2spk").is_file() else []
        if utt2spk:
            write_scp(data_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    return {"kept": len(keep), "too_short": short, "too_long": long_}


def perturbed(signal, factor: float, fs: int):
    """``signal`` [L] (or [L, C]) played ``factor`` times faster -> [round(L / factor)]."""
    from dispatch.data.audio import resample

    return resample(signal, int(round(fs * factor)), fs)


def _prefix(factor: float) -> str:
    return "" if factor == 1.0 else f"sp{factor:g}-"


def speed_perturb(data_dir: str | os.PathLike, out_dir: str | os.PathLike, factors: Sequence[float]
                  ) -> int:
    """Write ``out_dir`` (data dir + ``wav/`` audio) with every utterance at every factor;
    returns the number of utterances written."""
    if not factors or any(f <= 0 for f in factors):
        raise DataError(f"--speed_perturb_factors needs positive numbers, got {list(factors)}")
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    scps = {name: read_scp_dict(data_dir / name) for name in audio_scp_names(data_dir)}
    out: Dict[str, list] = {name: [] for name in scps}
    for name, entries in scps.items():
        for utt, path in entries.items():
            signal, fs = sf.read(path, dtype="float32")
            for factor in factors:
                new = _prefix(factor) + utt
                target = out_dir / "wav" / f"{new}.{Path(name).stem}.wav"
                sf.write(target, perturbed(signal, factor, fs), fs, subtype="FLOAT")
                out[name].append((new, str(target)))
    for name, entries in out.items():
        write_scp(out_dir / name, entries)
    for name in UTT_FILES:
        if (data_dir / name).is_file():
            rows = [(_prefix(f) + u, (_prefix(f) + v) if name == "utt2spk" else v)
                    for u, v in read_scp(data_dir / name) for f in factors]
            write_scp(out_dir / name, rows)
            if name == "utt2spk":
                write_scp(out_dir / "spk2utt", utt2spk_to_spk2utt(rows))
    return len(out["wav.scp"])
