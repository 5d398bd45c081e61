#!/usr/bin/env python3
"""Write ESPnet shape files for an enh data dir: ``OUT/speech_mix_shape`` and ``OUT/speech_ref1_shape``.

    python -m dispatch.bin.collect_shapes DATA_DIR OUT_DIR

Each line is ``utt_id num_samples``, read from the wav headers (no audio is decoded). ESPnet's
batch samplers read these to sort and bucket utterances. Written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

import soundfile as sf

from dispatch.data.scp import read_scp_dict
from dispatch.utils.io import atomic_write_text

SCP_TO_SHAPE = {"wav.scp": "speech_mix_shape", "spk1.scp": "speech_ref1_shape"}


def num_samples(path: str) -> int:
    if path.endswith("|"):
        raise ValueError(f"piped scp entries are not supported ('{path}'); write wav files")
    if ":" in path and not Path(path).exists():  # a Kaldi ark offset
        import kaldiio

        return len(kaldiio.load_mat(path)[1])
    return sf.info(path).frames


def collect_shapes(data_dir: Path, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for scp, shape in SCP_TO_SHAPE.items():
        entries = read_scp_dict(data_dir / scp)
        lines = [f"{utt} {num_samples(path)}" for utt, path in sorted(entries.items())]
        atomic_write_text(out_dir / shape, "\n".join(lines) + "\n")


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(cmd)
    try:
        collect_shapes(args.data_dir, args.out_dir)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"collect_shapes: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
