"""Register the toolkit's extra separators with ESPnet's enhancement task (idempotent).

After ``import dispatch.models`` (which imports this module) any ESPnet enh config, for
``espnet2.bin.enh_train``-style training, ``EnhancementTask.build_model_from_file`` or the
distillation task (teacher and student), can say ``separator: uformer``.
Registration must happen before a parser is built: ESPnet reads the choices when it makes one.
"""
from __future__ import annotations

from typing import Dict, Type

#: name in configs -> separator class
EXTRA_SEPARATORS: Dict[str, str] = {"uformer": "dispatch.models.uformer.UformerSeparator"}


def _load(path: str) -> Type:
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def register_separators() -> list[str]:
    """Add every extra separator to ``espnet2.tasks.enh.separator_choices``; returns the names."""
    from espnet2.tasks.enh import separator_choices

    for name, path in EXTRA_SEPARATORS.items():
        cls = _load(path)
        current = separator_choices.classes.get(name)
        if current is not None and current is not cls:
            raise RuntimeError(f"separator '{name}' is already registered as {current!r}")
        separator_choices.classes[name] = cls
    return sorted(EXTRA_SEPARATORS)


register_separators()
