"""Randomly initialised ESPnet enhancement models written as an exp dir, for measurements.

Timing and storage figures do not depend on the weights, so a measurement can stand in a random
teacher wherever a trained one would be loaded (``config.yaml`` + ``model.pth``, as ESPnet writes).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Union

import torch
import yaml


def full_config(conf: dict) -> argparse.Namespace:
    """ESPnet's enh training options with every default filled in, overridden by ``conf``."""
    import dispatch.models.register  # noqa: F401  (the uformer separator)
    from espnet2.tasks.enh import EnhancementTask

    args = vars(EnhancementTask.get_parser().parse_args([]))
    args.update(conf)
    return argparse.Namespace(**args)


def read_config(config: Union[str, Path, dict]) -> dict:
    """A config given as a YAML path or as a dict, as a dict."""
    if isinstance(config, dict):
        return dict(config)
    return dict(yaml.safe_load(Path(config).read_text()) or {})


def write_random_model(config: Union[str, Path, dict], directory: Union[str, Path],
                       seed: int = 0) -> Dict[str, Path]:
    """Build the model of ``config`` with random weights; write ``config.yaml`` and ``model.pth``."""
    from espnet2.tasks.enh import EnhancementTask

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    args = full_config(read_config(config))
    torch.manual_seed(seed)
    model = EnhancementTask.build_model(args)
    paths = {"config": directory / "config.yaml", "model_file": directory / "model.pth"}
    paths["config"].write_text(yaml.safe_dump(vars(args), sort_keys=False))
    torch.save(model.state_dict(), paths["model_file"])
    return paths
