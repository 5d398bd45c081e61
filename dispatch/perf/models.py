"""Randomly initialised ESPnet enhancement models written as an exp dir, for measurements.

Timing and storage figures do not depend on the weights, so a measurement can stand in a random
teacher wherever a trained one would be loaded (``config.yaml`` + ``model.pth``, as ESPnet writes).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Union

import torch
import yaml


def write_random_model(config: Union[str, Path, dict], directory: Union[str, Path],
                       seed: int = 0) -> Dict[str, Path]:
    """Build the model of ``config`` with random weights; write ``config.yaml`` and ``model.pth``."""
    from dispatch.models.teacher import build_enh_model, enh_options

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    args = enh_options(config)
    torch.manual_seed(seed)
    model = build_enh_model(args)
    paths = {"config": directory / "config.yaml", "model_file": directory / "model.pth"}
    paths["config"].write_text(yaml.safe_dump(vars(args), sort_keys=False))
    torch.save(model.state_dict(), paths["model_file"])
    return paths
