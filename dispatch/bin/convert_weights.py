#!/usr/bin/env python3
"""Rewrite a trusted model file as plain weights (tensors only), loadable with weights_only=True.

    python -m dispatch.bin.convert_weights OLD.pth NEW.pth

The toolkit refuses model files that need more than tensors and plain containers, because reading
them could run code. Run this only on a file whose origin you trust: it unpickles it fully once.
"""

import argparse
import sys
from typing import Optional, Sequence

from dispatch.utils.weights import UnsafeWeightsError, convert_to_weights


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="the trusted model file to convert (.pth)")
    parser.add_argument("dst", help="where to write the weights-only copy (.pth)")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    try:
        state = convert_to_weights(args.src, args.dst)
    except (UnsafeWeightsError, OSError) as exc:
        sys.exit(f"convert_weights: error: {str(exc).splitlines()[0]}")
    print(f"convert_weights: wrote {len(state)} entries to {args.dst}")


if __name__ == "__main__":
    main()
