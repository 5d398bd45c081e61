#!/usr/bin/env python3
"""Write one KD overlay per grid point of a sweep over each base overlay (recipe stage 6, --kd_sweep).

    python -m dispatch.bin.kd_sweep --sweep "kd_weight=1,10,100 k=0.5,0.8" --out_dir exp/sweep_overlays \\
        conf/kd/mssp_dfkd.yaml [conf/kd/dfkd.yaml ...]

Prints the written overlays, one path a line (``OUT_DIR/<base>__<key><value>_....yaml``). Where each
key goes (top-level option or kd_loss_conf key) is resolved as described in :mod:`dispatch.kd.sweep`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overlays", nargs="*", type=Path, help="base KD overlays (YAML), one sweep each")
    parser.add_argument("--sweep", required=True,
                        help='grid as whitespace-separated key=v1,v2 items, e.g. "kd_weight=1,10 k=0.5,0.8"')
    parser.add_argument("--out_dir", type=Path, required=True, help="folder for the expanded overlays")
    parser.add_argument("--dry_run", action="store_true", help="print the paths without writing files")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    from dispatch.kd.sweep import write_sweep

    try:
        paths = write_sweep(args.overlays, args.sweep, args.out_dir, dry_run=args.dry_run)
    except (OSError, ValueError) as exc:
        print(f"kd_sweep: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    print("\n".join(str(p) for p in paths))


if __name__ == "__main__":
    main()
