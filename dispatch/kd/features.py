"""Forward-hook taps that collect intermediate features for feature-level KD (AT-KL).

Interface between a distillation model and a feature KD loss::

    loss_module = build_kd_loss("atkl", layer_pairs=[["separator.encoder.0", "separator.encoder.0"]])
    teacher_paths = [t for t, _ in loss_module.feature_pairs]
    student_paths = [s for _, s in loss_module.feature_pairs]
    teacher_tap = FeatureTap(teacher_model, teacher_paths, name="teacher")   # fails at start-up
    student_tap = FeatureTap(student_model, student_paths, name="student")   # on a bad path
    ...                                          # per step:
    teacher_tap.clear(); student_tap.clear()
    t = teacher(...); s = student(...)           # the hooks store one output per path
    loss, stats = loss_module(s, t, y, lengths, student_feats=student_tap.features,
                              teacher_feats=teacher_tap.features)

Paths are ``named_modules()`` names relative to the model the tap is given (for an ESPnet
enhancement model e.g. ``separator.encoder.0``). A module returning a tuple or list contributes its
first tensor (e.g. the output sequence of an ``nn.LSTM``). A module called several times in one
forward keeps its last output.
"""
from __future__ import annotations

import difflib
from typing import Any, Optional

import torch
from torch import nn

CLOSEST = 5  # module paths suggested for an unknown one


def first_tensor(output: Any) -> Any:
    """The output itself, or the first tensor-like item of a tuple/list (searched depth-first)."""
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
        return None
    if isinstance(output, torch.Tensor) or type(output).__name__ == "ComplexTensor":
        return output
    return None


def closest_paths(names: list[str], wanted: str, count: int = CLOSEST) -> list[str]:
    """The ``count`` module names nearest to ``wanted``: longest shared dotted prefix first, then
    by string similarity (so a typo in the last part still finds its neighbours)."""
    def shared(name: str) -> int:
        same = 0
        for a, b in zip(name.split("."), wanted.split(".")):
            if a != b:
                break
            same += 1
        return same

    ratio = {n: difflib.SequenceMatcher(None, n, wanted).ratio() for n in names}
    order = {n: i for i, n in enumerate(names)}
    return sorted(names, key=lambda n: (-shared(n), -ratio[n], order[n]))[:count]


def unknown_path_message(path: str, names: list[str], name: str) -> str:
    """One line: the unknown path, the closest module paths, and the command that lists them all."""
    near = ", ".join(closest_paths(names, path))
    return (f"no module {path!r} in {name}; closest: {near}; all {len(names)}: python -m "
            f"dispatch.bin.list_modules --config <the {name}'s config.yaml>")


class FeatureTap:
    """Store the outputs of the modules at ``paths`` of ``model`` on every forward.

    Raises ``ValueError("no module 'x' in <name>; closest: ...; all N: python -m
    dispatch.bin.list_modules ...")`` at construction for a path that does not exist.
    ``features`` lists the stored outputs in path order; ``clear()`` forgets them; ``remove()``
    detaches the hooks.
    """

    def __init__(self, model: nn.Module, paths: list[str], name: Optional[str] = None) -> None:
        self.paths = [str(p) for p in paths]
        self.name = name or type(model).__name__
        modules = dict(model.named_modules())
        available = [n for n in modules if n]
        for path in self.paths:
            if path not in modules or not path:
                raise ValueError(unknown_path_message(path, available, self.name))
        self._store: dict[int, Any] = {}
        self._handles = [modules[path].register_forward_hook(self._hook(i))
                         for i, path in enumerate(self.paths)]

    def _hook(self, position: int):
        def store(module: nn.Module, inputs: Any, output: Any) -> None:
            self._store[position] = first_tensor(output)
        return store

    @property
    def features(self) -> list:
        """The stored outputs in path order; a path whose module has not run raises RuntimeError."""
        missing = [p for i, p in enumerate(self.paths) if self._store.get(i) is None]
        if missing:
            raise RuntimeError(f"no output stored for {', '.join(missing)} in {self.name}; "
                               "did the forward pass run through these modules?")
        return [self._store[i] for i in range(len(self.paths))]

    def clear(self) -> None:
        self._store.clear()

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._store.clear()
