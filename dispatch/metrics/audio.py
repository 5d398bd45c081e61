"""Reading Kaldi-style scp files and the audio they point to, for scoring."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_ARK_OFFSET = re.compile(r"^(?P<ark>.+\.ark):(?P<offset>\d+)$")


class AudioError(ValueError):
    """An utterance that cannot be scored; the message is the reason, one line."""


def load_audio(location: str) -> tuple[np.ndarray, int]:
    """Load mono audio as float64 in [-1, 1].  Returns (wave [L], sample rate).

    ``location`` is a sound file path, or a Kaldi ``file.ark:offset`` entry holding wav data
    (read with kaldiio). Raises ``AudioError`` with a one-line reason on any failure.
    """
    match = _ARK_OFFSET.match(location)
    try:
        if match:
            import kaldiio

            loaded = kaldiio.load_mat(location)
            if not isinstance(loaded, tuple):
                raise AudioError(f"ark entry {location} holds a matrix, not audio")
            fs, wave = loaded
            wave = np.asarray(wave)
            if np.issubdtype(wave.dtype, np.integer):
                wave = wave.astype(np.float64) / float(np.iinfo(wave.dtype).max + 1)
            else:
                wave = wave.astype(np.float64)
        else:
            if location.endswith("|"):
                raise AudioError(f"pipe entries are not supported: {location!r}")
            import soundfile

            wave, fs = soundfile.read(location, dtype="float64", always_2d=False)
    except AudioError:
        raise
    except FileNotFoundError:
        raise AudioError(f"missing file {location}") from None
    except Exception as exc:  # soundfile / kaldiio raise several types for unreadable data
        if not match and not Path(location).exists():
            raise AudioError(f"missing file {location}") from None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AudioError(f"unreadable file {location}: {first}") from None
    if wave.ndim == 2:
        if wave.shape[1] != 1:
            raise AudioError(f"{location} has {wave.shape[1]} channels, expected mono")
        wave = wave[:, 0]
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(f"{location} holds no samples")
    return wave, int(fs)
