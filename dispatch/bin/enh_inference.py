#!/usr/bin/env python3
"""ESPnet's ``enh_inference`` with the toolkit's extra separators (e.g. ``uformer``) registered.

Models built only from ESPnet's own modules also run with stock
``python -m espnet2.bin.enh_inference``; this wrapper takes exactly the same options.
"""

from typing import Optional, Sequence

import dispatch.models  # noqa: F401  (registers the toolkit's separators with ESPnet)


def main(cmd: Optional[Sequence[str]] = None) -> None:
    from espnet2.bin.enh_inference import get_parser, main as espnet_main

    from dispatch.utils.weights import UnsafeWeightsError, load_weights

    model_file = get_parser().parse_known_args(cmd)[0].model_file
    try:  # ESPnet unpickles fully; the file must first pass as plain weights
        if model_file is not None:
            load_weights(model_file)
    except UnsafeWeightsError as exc:
        raise SystemExit(f"enh_inference: error: {exc}") from None
    espnet_main(cmd)


if __name__ == "__main__":
    main()
