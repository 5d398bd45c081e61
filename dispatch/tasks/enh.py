"""SafeEnhancementTask: ESPnet's EnhancementTask trained by :class:`dispatch.tasks.trainer.SafeTrainer`.

Used by ``dispatch.bin.enh_train`` (teachers and no-KD students), so that those trainings also
survive a kill at any moment; the exp dir it writes is a stock ESPnet one.
"""

from espnet2.tasks.enh import EnhancementTask

from dispatch.tasks.trainer import SafeTrainer


class SafeEnhancementTask(EnhancementTask):
    """ESPnet's enhancement task; only the trainer differs (atomic checkpoints, clean exit)."""

    trainer = SafeTrainer
