"""Enhancement of a WAV file, a folder of WAVs or a Kaldi scp with any :class:`Enhancer`.

Inputs (``--input``) and where their outputs go (``--output``):
  * a file: ``--output`` is the output file, or a folder (then ``FOLDER/<input name>.wav``);
  * a folder: every ``.wav``/``.flac`` below it; outputs keep their relative paths under the
    output folder, as ``.wav``;
  * an scp (``utt_id path`` lines, ``.scp``): ``OUTPUT/<utt_id>.wav`` plus ``OUTPUT/spk1.scp``
    listing them, ready for ``dispatch.bin.score --inf_scp``.
Each file is read at its own rate, resampled to the model's rate, enhanced, resampled back and
cut to its original length. A file that cannot be read, has more than one channel or holds no
samples gets one line on stderr; every other file is still enhanced.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, TextIO, Tuple

import numpy as np

from dispatch.data.audio import AUDIO_EXTENSIONS, find_audio, resample, write_wav
from dispatch.data.scp import DataError, read_scp
from dispatch.utils.io import atomic_write_text

#: Peak of the written output when normalising (as ESPnet's ``--normalize_output_wav``).
OUTPUT_PEAK = 0.9


class InputError(ValueError):
    """An input that cannot be enhanced; the message is one line that names the file."""


@dataclass
class Job:
    """One input to enhance and where its output goes."""

    key: str
    source: str
    target: Path


def plan_jobs(input_path: str, output: str) -> Tuple[List[Job], Optional[Path]]:
    """The jobs for ``--input``/``--output`` (module docstring), and the scp to write (or None)."""
    src, out = Path(input_path), Path(output)
    if src.is_dir():
        files = find_audio(src)
        if not files:
            raise InputError(f"no {'/'.join(AUDIO_EXTENSIONS)} files under '{src}'")
        return [Job(str(f.relative_to(src)), str(f),
                    out / f.relative_to(src).with_suffix(".wav")) for f in files], None
    if not src.is_file():
        raise InputError(f"input '{src}' does not exist: give a WAV file, a folder or an scp")
    if src.suffix.lower() == ".scp":
        try:
            entries = read_scp(src)
        except DataError as exc:
            raise InputError(str(exc).splitlines()[0]) from None
        if not entries:
            raise InputError(f"scp '{src}' lists no utterances")
        return ([Job(key, location, out / f"{key.replace('/', '_')}.wav")
                 for key, location in entries], out / "spk1.scp")
    as_folder = out.is_dir() or output.endswith(("/", "\\")) or not out.suffix
    return [Job(src.name, str(src), out / f"{src.stem}.wav" if as_folder else out)], None


def read_input(location: str) -> Tuple[np.ndarray, int]:
    """(mono signal [L] float32, sample rate) of a file or Kaldi ark entry; InputError with the
    reason (missing, unreadable, not mono, empty, NaN)."""
    from dispatch.metrics.audio import AudioError, load_audio

    try:
        wave, fs = load_audio(location)  # [L] float64
    except AudioError as exc:
        hint = "; mix it down to mono first (e.g. sox IN OUT remix -)" if "channels" in str(exc) else ""
        raise InputError(f"{exc}{hint}") from None
    if not np.all(np.isfinite(wave)):
        raise InputError(f"{location}: contains NaN or infinite samples")
    return wave.astype(np.float32), int(fs)


def enhance_wave(enhancer: Callable[[np.ndarray], np.ndarray], wave: np.ndarray, fs: int,
                 model_fs: int) -> np.ndarray:
    """[L] at ``fs`` -> enhanced [L] at ``fs``, through the model's rate ``model_fs``."""
    x = resample(wave, fs, model_fs)  # [L * model_fs / fs]
    y = np.asarray(enhancer(x), dtype=np.float32)  # [same]
    y = resample(y, model_fs, fs)  # [~L]
    return np.pad(y, (0, max(0, wave.shape[0] - y.shape[0])))[:wave.shape[0]]


def enhance_jobs(enhancer, jobs: List[Job], normalize: bool = True, progress: bool = False,
                 log: Optional[TextIO] = None) -> Tuple[List[Job], List[str]]:
    """Enhance every job; returns (the jobs written, one error line per job that failed).
    Progress and skipped files go to ``log`` (default: the current ``sys.stderr``)."""
    log = log or sys.stderr
    done, errors = [], []
    iterator = jobs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(jobs, desc="enhance", unit="file", file=log, dynamic_ncols=True)
    for job in iterator:
        try:
            wave, fs = read_input(job.source)
            y = enhance_wave(enhancer, wave, fs, enhancer.fs)
            if normalize:
                y = y * (OUTPUT_PEAK / max(float(np.max(np.abs(y))), 1e-8))
            write_wav(job.target, y, fs, subtype="PCM_16" if normalize else "FLOAT")
            done.append(job)
        except InputError as exc:
            errors.append(str(exc))
            print(f"enhance: skipped: {exc}", file=log)
    return done, errors


def write_output_scp(path: Path, jobs: List[Job]) -> None:
    """``utt_id path`` lines of the written outputs, sorted by id."""
    lines = sorted(f"{j.key} {j.target.resolve()}" for j in jobs)
    atomic_write_text(path, "".join(line + "\n" for line in lines))
