"""SafeTrainer: ESPnet's Trainer with crash-safe checkpoints, a resume that recovers, and a clean exit.

ESPnet's ``Trainer.run`` writes ``checkpoint.pth`` and ``<N>epoch.pth`` with a plain ``torch.save``
and re-points ``latest.pth`` / ``<phase>.<key>.best.pth`` by unlinking and re-creating the link. A
kill during either leaves a truncated file or no link. While :meth:`SafeTrainer.run` runs ESPnet's
loop, every save to a path goes through :func:`dispatch.utils.io.atomic_write` (a temporary file in
the same folder, ``fsync``, ``os.replace``), and a link is replaced by renaming a fresh link over it
(the unlink just before is deferred, so the old link stays until the new one is in place). Before
``checkpoint.pth`` is replaced, the previous one is kept as ``checkpoint.prev.pth`` (a hard link:
no copy until the new file replaces it).

Resume (``--resume true``): when ``checkpoint.pth`` cannot be loaded, one warning line names it and
training continues from ``checkpoint.prev.pth`` (one epoch earlier; ESPnet reseeds every epoch, so
the result is the same); when nothing is loadable it stops with one line that says what to run.
After a resume, an epoch file or link whose write was interrupted is re-made from the checkpoint.

Exit: the tensorboard writers are closed, and under torch.distributed every rank waits at a
barrier and then destroys the process group (ESPnet's ``main_worker`` runs this trainer for
torchrun, slurm and spawn alike), so no rank tears down communication while another still uses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set

import torch
from espnet2.train.trainer import Trainer

from dispatch.utils.io import atomic_write

PREVIOUS_CHECKPOINT = "checkpoint.prev.pth"


class ResumeError(SystemExit):
    """No loadable training state is left; the message is one line that says what to run."""


def _rank0() -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _inside(path: Path, folder: Path) -> bool:
    try:
        return os.path.commonpath([os.path.abspath(path), str(folder)]) == str(folder)
    except ValueError:
        return False


def _replace_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` in one rename (a reader sees the old or the new link)."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.lnk")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _keep_previous(checkpoint: Path) -> None:
    """Hard-link the current ``checkpoint.pth`` as ``checkpoint.prev.pth`` (atomically)."""
    if not checkpoint.is_file():
        return
    prev = checkpoint.with_name(PREVIOUS_CHECKPOINT)
    tmp = checkpoint.with_name(f".{PREVIOUS_CHECKPOINT}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(checkpoint, tmp)
    except OSError:  # file systems without hard links
        shutil.copyfile(checkpoint, tmp)
    os.replace(tmp, prev)


def remove_stale_temporaries(output_dir: Path) -> List[Path]:
    """Delete the temporary files and links a killed save left behind (``.NAME.*.tmp|lnk``)."""
    removed = []
    for pattern in (".*.tmp", ".*.lnk"):
        for path in Path(output_dir).glob(pattern):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


@contextlib.contextmanager
def atomic_saves(output_dir: Path) -> Iterator[List[object]]:
    """Make ESPnet's saves and link updates under ``output_dir`` atomic for the ``with`` block.

    Yields the list of tensorboard ``SummaryWriter`` objects created meanwhile (closed on exit).
    """
    output_dir = Path(os.path.abspath(output_dir))
    original_save = torch.save
    original_unlink = Path.unlink
    original_symlink_to = Path.symlink_to
    deferred: Set[Path] = set()  # links whose unlink waits for their replacement
    writers: List[object] = []

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)):
            return original_save(obj, f, *args, **kwargs)
        path = Path(f)
        if path.name == "checkpoint.pth" and _inside(path, output_dir):
            _keep_previous(path)
        atomic_write(path, lambda tmp: original_save(obj, tmp, *args, **kwargs))

    def unlink(self, *args, **kwargs):
        if self.is_symlink() and _inside(self, output_dir):
            deferred.add(Path(os.path.abspath(self)))
            return
        original_unlink(self, *args, **kwargs)

    def symlink_to(self, target, *args, **kwargs):
        if not _inside(self, output_dir):
            return original_symlink_to(self, target, *args, **kwargs)
        deferred.discard(Path(os.path.abspath(self)))
        _replace_link(self, str(target))

    tensorboard = None
    with contextlib.suppress(ImportError):
        import torch.utils.tensorboard as tensorboard
    original_writer = getattr(tensorboard, "SummaryWriter", None)

    def make_writer(*args, **kwargs):
        writer = original_writer(*args, **kwargs)
        writers.append(writer)
        return writer

    torch.save, Path.unlink, Path.symlink_to = save, unlink, symlink_to
    if original_writer is not None:
        tensorboard.SummaryWriter = make_writer
    try:
        yield writers
    finally:
        torch.save, Path.unlink, Path.symlink_to = original_save, original_unlink, original_symlink_to
        if original_writer is not None:
            tensorboard.SummaryWriter = original_writer
        for link in deferred:  # unlinked and never re-created: honour the unlink now
            if link.is_symlink():
                original_unlink(link)
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.close()


def _load_problem(path: Path) -> Optional[str]:
    """None when ``path`` loads as an ESPnet checkpoint, else a short reason."""
    try:
        states = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - truncated files fail in many ways
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"{type(exc).__name__}: {first[:120]}"
    if not isinstance(states, dict) or not {"model", "reporter", "optimizers"} <= set(states):
        return "not an ESPnet training checkpoint"
    return None


class SafeTrainer(Trainer):
    """ESPnet's Trainer; see the module docstring for what it adds."""

    #: ``best_model_criterion`` of the running job (for re-making best links after a resume)
    _criteria: Sequence[Sequence[str]] = ()

    @classmethod
    def resume(cls, checkpoint, model, reporter, optimizers, schedulers, scaler, ngpu=0,
               strict=True):
        checkpoint = Path(checkpoint)
        previous = checkpoint.with_name(PREVIOUS_CHECKPOINT)
        problem = _load_problem(checkpoint)
        source = checkpoint
        if problem is not None:
            if previous.is_file() and _load_problem(previous) is None:
                logging.warning(f"{checkpoint} cannot be loaded ({problem}); resuming from "
                                f"{previous}, one epoch earlier")
                source = previous
            else:
                epochs = sorted((p for p in checkpoint.parent.glob("*epoch.pth")
                                 if p.name[:-len("epoch.pth")].isdigit()),
                                key=lambda p: int(p.name[:-len("epoch.pth")]))
                restart = (f"--resume true --init_param {epochs[-1]}" if epochs
                           else "--resume true")
                raise ResumeError(
                    f"resume: {checkpoint} cannot be loaded ({problem}) and no earlier training "
                    f"state is left; run: mv {checkpoint} {checkpoint}.bad, then rerun with "
                    f"{restart} (optimizer state is lost)")
        super().resume(checkpoint=source, model=model, reporter=reporter, optimizers=optimizers,
                       schedulers=schedulers, scaler=scaler, ngpu=ngpu, strict=strict)
        if _rank0():
            cls._repair_outputs(checkpoint.parent, model, reporter)

    @classmethod
    def _repair_outputs(cls, output_dir: Path, model: torch.nn.Module, reporter) -> None:
        """Re-make what a kill between the checkpoint and the epoch file/links left undone."""
        epoch = reporter.get_epoch()
        if epoch < 1:
            return
        epoch_file = output_dir / f"{epoch}epoch.pth"
        if not epoch_file.is_file():
            logging.warning(f"re-writing {epoch_file} from the checkpoint (its save was interrupted)")
            state = model.state_dict()
            atomic_write(epoch_file, lambda tmp: torch.save(state, tmp))
        _replace_link(output_dir / "latest.pth", epoch_file.name)
        for phase, key, mode in cls._criteria:
            if reporter.has(phase, key):
                best = output_dir / f"{reporter.get_best_epoch(phase, key, mode)}epoch.pth"
                if best.is_file():
                    _replace_link(output_dir / f"{phase}.{key}.best.pth", best.name)

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        output_dir = Path(trainer_options.output_dir)
        is_rank0 = not distributed_option.distributed or distributed_option.dist_rank == 0
        if is_rank0 and output_dir.is_dir():
            remove_stale_temporaries(output_dir)
        cls._criteria = tuple(trainer_options.best_model_criterion)
        dist = torch.distributed
        finished = False
        try:
            with atomic_saves(output_dir):
                super().run(model=model, optimizers=optimizers, schedulers=schedulers,
                            train_iter_factory=train_iter_factory,
                            valid_iter_factory=valid_iter_factory,
                            plot_attention_iter_factory=plot_attention_iter_factory,
                            trainer_options=trainer_options,
                            distributed_option=distributed_option)
            finished = True
        finally:
            if dist.is_available() and dist.is_initialized():
                if finished:
                    dist.barrier()  # every rank is done with the model and the files
                dist.destroy_process_group()
