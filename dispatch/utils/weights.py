"""Model files are data, not code: every ``.pth`` the toolkit reads itself goes through here.

``torch.load(..., weights_only=False)`` unpickles arbitrary objects and so runs any code pickled
into the file; a downloaded teacher must never be able to do that. :func:`load_weights` reads with
``weights_only=True`` (tensors, numbers, strings, lists, dicts, ordered dicts only) and turns every
refusal into one line that says why and how to convert a trusted file (:func:`convert_to_weights`,
``python -m dispatch.bin.convert_weights``).
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Dict, Union

import torch

PathLike = Union[str, os.PathLike]

CONVERT_HINT = "python -m dispatch.bin.convert_weights {path} NEW.pth"


class UnsafeWeightsError(ValueError):
    """A model file that cannot be read as plain weights; the message is one line for the user."""


def _first_global(message: str) -> str:
    """The object a refused pickle wanted to build, e.g. ``posix.system`` (or "" if not named)."""
    match = re.search(r"Unsupported (?:global|operand)[^A-Za-z0-9_]*(?:GLOBAL )?([\w.]+)", message)
    return match.group(1) if match else ""


def load_weights(path: PathLike, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; a file that needs more raises UnsafeWeightsError.

    Nothing pickled in the file is ever executed: torch's restricted unpickler refuses every
    global that is not a tensor type or a plain container before constructing it.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise UnsafeWeightsError(f"model file '{path}' does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        needs = _first_global(str(exc))
        what = f"it needs '{needs}'" if needs else "it holds Python objects besides tensors"
        raise UnsafeWeightsError(
            f"refusing to load '{path}': {what}, which could run code; if you trust it, "
            f"convert it once: {CONVERT_HINT.format(path=path)}") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UnsafeWeightsError(
            f"cannot read model file '{path}' ({first}): it is truncated or not a torch file; "
            "re-create or re-download it") from None


def _tensors_only(obj: Any) -> Any:
    """``obj`` with everything but tensors and plain containers/scalars dropped."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, dict):
        kept = {k: _tensors_only(v) for k, v in obj.items() if isinstance(k, (str, int))}
        return {k: v for k, v in kept.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [v for v in (_tensors_only(x) for x in obj) if v is not None]
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    return None


def model_state(weights: Any) -> Dict[str, Any]:
    """The state dict inside loaded weights (an ESPnet ``checkpoint.pth`` has it as ``model``)."""
    if isinstance(weights, dict) and isinstance(weights.get("model"), dict):
        return weights["model"]
    return weights


def convert_to_weights(src: PathLike, dst: PathLike) -> Dict[str, Any]:
    """Rewrite a TRUSTED model file as plain weights that :func:`load_weights` accepts.

    This is the one place that unpickles fully (``weights_only=False``): run it only on a file
    whose origin you trust. An ESPnet ``checkpoint.pth`` is reduced to its ``model`` state.
    """
    from dispatch.utils.io import atomic_write

    state = torch.load(str(src), map_location="cpu", weights_only=False)
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    clean = _tensors_only(model_state(state))
    if not isinstance(clean, dict) or not any(isinstance(v, torch.Tensor) for v in clean.values()):
        raise UnsafeWeightsError(f"'{src}' holds no tensor state dict to convert")
    atomic_write(Path(dst), lambda tmp: torch.save(clean, tmp))
    return clean
