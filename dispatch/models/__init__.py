"""Models: the distillation model and extra ESPnet separators (``separator: uformer``).

Importing this package registers the extra separators with ``espnet2.tasks.enh``.
"""
from dispatch.models import register  # noqa: F401  (registers extra separators)
