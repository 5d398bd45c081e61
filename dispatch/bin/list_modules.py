#!/usr/bin/env python3
"""List the module paths of an ESPnet enhancement model: the names AT-KL ``layer_pairs`` take.

    python -m dispatch.bin.list_modules --config conf/student.yaml [--grep separator]

One line per module: its path (relative to the ESPnet enh model, e.g. ``separator.tcn.network.0``),
its class and its parameter count. The config may be a full ``config.yaml`` or a recipe's partial
one (options it lacks take ESPnet's defaults).
"""

import argparse
from typing import Optional, Sequence


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="ESPnet enh config (YAML) of the model")
    parser.add_argument("--grep", default="", help="show only paths that contain this text")
    return parser


def main(cmd: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(cmd)
    from dispatch.models.teacher import build_enh_model

    model = build_enh_model(args.config)
    for path, module in model.named_modules():
        if path and args.grep in path:
            params = sum(p.numel() for p in module.parameters())
            print(f"{path}\t{type(module).__name__}\t{params}")


if __name__ == "__main__":
    main()
