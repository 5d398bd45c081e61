"""Atomic file writes: a crash never leaves a half-written file that a later stage would trust.

The content goes to a temporary file in the destination's folder (``.NAME.XXXX.tmp``), is flushed
to disk, gets the permissions a plain ``open(path, "w")`` would give, and then replaces the
destination in one ``os.replace`` (atomic on POSIX file systems). A reader sees either the old
file or the complete new one; a process killed mid-write leaves at most a stray ``.*.tmp`` file.

Standard library only: ``dispatch.data.scp`` and the shell helpers in ``utils/`` import it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    """The process umask (read from /proc where possible: ``os.umask`` alone cannot read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: PathLike, writer: Callable[[str], None], *, suffix: str = ".tmp") -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path``; on failure ``path`` is untouched.

    ``writer`` gets a ``str`` path in the destination's folder, e.g. ``lambda p: torch.save(obj, p)``.
    Give ``suffix`` when the writer picks its format from the extension (``".png"`` for savefig).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        old: Optional[os.stat_result] = path.stat() if path.exists() else None
        writer(tmp)
        _fsync(tmp)
        # mkstemp makes the file 0600; keep the old file's mode, else what open() would give
        os.chmod(tmp, (old.st_mode & 0o7777) if old is not None else (0o666 & ~_umask()))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding=encoding))


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
