"""dispatch.utils.io: atomic writes leave the old file or the whole new one, never half a file."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from helpers import REPO
from dispatch.utils.io import atomic_write, atomic_write_bytes, atomic_write_text


def leftovers(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_text_and_binary_writes(tmp_path):
    atomic_write_text(tmp_path / "sub" / "wav.scp", "a /x.wav\n")  # creates the folder
    assert (tmp_path / "sub" / "wav.scp").read_text() == "a /x.wav\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "m.pth", lambda p: torch.save({"w": torch.ones(2)}, p))
    assert torch.equal(torch.load(tmp_path / "m.pth")["w"], torch.ones(2))
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "sub") == []


def test_exception_mid_write_keeps_old_file(tmp_path):
    target = tmp_path / "RESULTS.md"
    target.write_text("old complete table\n")

    def half_then_crash(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("| system | PESQ |\n| half")
            f.flush()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_crash)
    assert target.read_text() == "old complete table\n"
    assert leftovers(tmp_path) == []  # the temporary file is removed


def test_sigkill_mid_write_keeps_old_file(tmp_path):
    """A process killed inside the writer (no cleanup runs) leaves the old file untouched."""
    target = tmp_path / "summary.json"
    target.write_text('{"pesq": 3.1}\n')
    child = textwrap.dedent(f"""
        import os, signal
        from dispatch.utils.io import atomic_write
        def writer(tmp):
            with open(tmp, "w") as f:
                f.write('{{"pesq": 2.')
                f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(target)!r}, writer)
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=REPO, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == '{"pesq": 3.1}\n'
    # at most a stray hidden temporary file; never the target name
    assert all(name.startswith(".summary.json.") and name.endswith(".tmp")
               for name in leftovers(tmp_path))


def test_permissions_like_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new.scp", "x\n")
        assert stat.S_IMODE((tmp_path / "new.scp").stat().st_mode) == 0o644  # not mkstemp's 0600
        keep = tmp_path / "keep.scp"
        keep.write_text("y\n")
        keep.chmod(0o664)
        atomic_write_text(keep, "z\n")
        assert stat.S_IMODE(keep.stat().st_mode) == 0o664
    finally:
        os.umask(old)


def test_suffix_for_writers_that_read_the_extension(tmp_path):
    seen = []
    atomic_write(tmp_path / "plot.png", lambda p: (seen.append(p), Path(p).write_bytes(b"png")),
                 suffix=".png")
    assert seen[0].endswith(".png") and (tmp_path / "plot.png").read_bytes() == b"png"
