"""ESPnet shape files of an enh data dir (stage 3): ``utt_id num_samples`` per line.

``speech_mix_shape`` (from wav.scp) and ``speech_ref1_shape`` (from spk1.scp); the numbers come
from the wav headers (no audio is decoded), or from the matrix header of a Kaldi ark entry.
ESPnet's batch samplers read these files to sort and bucket utterances.
"""
from __future__ import annotations

from pathlib import Path

import soundfile as sf

from dispatch.data.scp import read_scp_dict
from dispatch.utils.io import atomic_write_text

SCP_TO_SHAPE = {"wav.scp": "speech_mix_shape", "spk1.scp": "speech_ref1_shape"}


def num_samples(path: str) -> int:
    """Samples in one scp value: a wav file, or a ``file.ark:offset`` Kaldi entry."""
    if path.endswith("|"):
        raise ValueError(f"piped scp entries are not supported ('{path}'); write wav files")
    if ":" in path and not Path(path).exists():  # a Kaldi ark offset
        import kaldiio

        return len(kaldiio.load_mat(path)[1])
    return sf.info(path).frames


def collect_shapes(data_dir: Path, out_dir: Path) -> None:
    """Write ``out_dir/speech_mix_shape`` and ``out_dir/speech_ref1_shape`` atomically."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for scp, shape in SCP_TO_SHAPE.items():
        entries = read_scp_dict(data_dir / scp)
        lines = [f"{utt} {num_samples(path)}" for utt, path in sorted(entries.items())]
        atomic_write_text(out_dir / shape, "\n".join(lines) + "\n")
