"""Pytest fixtures and session settings; the helper functions are in ``test/helpers.py``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Dict

import pytest

from helpers import tiny_tasnet_config, write_enh_model

os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def teacher_files(tmp_path_factory) -> Dict[str, Path]:
    """A random tiny Conv-TasNet teacher (``config.yaml`` + ``model.pth``), written once per session."""
    return write_enh_model(tmp_path_factory.mktemp("teacher"),
                           tiny_tasnet_config(channel=24, layer=3, hidden=48), seed=1)
