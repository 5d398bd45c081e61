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

from dispatch.data.shapes import SCP_TO_SHAPE, collect_shapes, num_samples  # noqa: F401


def main(cmd: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="Kaldi-style data dir (wav.scp, spk1.scp)")
    parser.add_argument("out_dir", type=Path, help="where the shape files go")
    args = parser.parse_args(cmd)
    try:
        collect_shapes(args.data_dir, args.out_dir)
    except (OSError, ValueError, RuntimeError) as exc:
        print(f"collect_shapes: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
