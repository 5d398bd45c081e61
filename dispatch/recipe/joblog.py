"""Job logs: keep known-harmless dependency noise off the console (not out of the log), and pull
the lines that say why a job failed out of its log.

Known-harmless noise (:data:`HARMLESS`): nltk's offline download notes (``[nltk_data] ...``),
``FutureWarning``s with the source line Python prints under them, ESPnet's "Eps is
deprecated in si_snr loss" note and its "Failed to import Flash Attention" note (no GPU kernels).
"""
from __future__ import annotations

import io
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, TextIO

HARMLESS = (re.compile(r"^\[nltk_data\]"), re.compile(r"FutureWarning"),
            re.compile(r"Eps is deprecated"), re.compile(r"^Failed to import Flash Attention"))
#: A line that starts the report of an error.
ERROR_LINE = re.compile(r"(Traceback \(most recent call last\)|\b\w*(Error|Exception)\b|"
                        r"\berror:|\bKilled\b|Segmentation fault|out of memory)")


def is_harmless(line: str) -> bool:
    return any(p.search(line) for p in HARMLESS)


class LineFilter:
    """Splits text into lines and decides for each whether the console shows it.

    A dropped warning line takes the indented source line Python prints under it along.
    """

    def __init__(self) -> None:
        self._partial = ""
        self._dropping = False

    def feed(self, text: str) -> List[str]:
        """Complete lines of ``text`` (with their newlines) that the console should show."""
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        return [line + "\n" for line in lines if self._keep(line)]

    def flush(self) -> List[str]:
        rest, self._partial = self._partial, ""
        return [rest] if rest and self._keep(rest) else []

    def _keep(self, line: str) -> bool:
        if self._dropping and line.startswith((" ", "\t")) and line.strip():
            return False
        self._dropping = is_harmless(line)
        return not self._dropping


class ConsoleTee(io.TextIOBase):
    """A stand-in for ``sys.stderr``: everything goes to a log file (once one is attached; earlier
    text is kept until then), the console gets everything but known-harmless noise."""

    def __init__(self, console: TextIO) -> None:
        super().__init__()
        self.console = console
        self.filter = LineFilter()
        self.log: Optional[TextIO] = None
        self._pending: Optional[List[str]] = []  # text written before a log is attached
        self._later: Optional[Path] = None  # a log to open once its directory exists

    def attach(self, path: Path, when_dir_exists: bool = False) -> None:
        """Start writing the log file (appending) with what was written so far; with
        ``when_dir_exists``, only once its directory exists (a run that stops at start-up checks
        leaves no output dir behind)."""
        if when_dir_exists and not path.parent.is_dir():
            self._later = path
            return
        self._later = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(path, "a", encoding="utf-8")
        self.log.write("".join(self._pending or []))
        self.log.flush()
        self._pending = []

    def detach(self) -> TextIO:
        """Hand back the console with everything written so far (for when it is the log file)."""
        self.console.write("".join(self._pending or []))
        self._pending = None
        return self.console

    def write(self, text: str) -> int:
        if self._later is not None and self._later.parent.is_dir():
            self.attach(self._later)
        if self.log is not None:
            self.log.write(text)
            self.log.flush()
        elif self._pending is not None:
            self._pending.append(text)
        for line in self.filter.feed(text):
            self.console.write(line)
        self.console.flush()
        return len(text)

    def flush(self) -> None:
        for line in self.filter.flush():
            self.console.write(line)
        self.console.flush()
        if self.log is not None:
            self.log.flush()

    def fileno(self) -> int:
        return self.console.fileno()

    def isatty(self) -> bool:
        return self.console.isatty()


def install_console_tee() -> ConsoleTee:
    """Put a :class:`ConsoleTee` in front of ``sys.stderr`` (idempotent); returns it."""
    if not isinstance(sys.stderr, ConsoleTee):
        sys.stderr = ConsoleTee(sys.stderr)
    return sys.stderr


@contextmanager
def console_tee() -> Iterator[ConsoleTee]:
    """:func:`install_console_tee` for the duration of a ``with`` block; the previous
    ``sys.stderr`` comes back afterwards and the log file is closed."""
    previous = sys.stderr
    tee = install_console_tee()
    try:
        yield tee
    finally:
        if sys.stderr is tee:
            tee.flush()
            if tee.log is not None:
                tee.log.close()
                tee.log = None
            tee._pending = None  # handlers that still hold the tee write to the console only
        sys.stderr = previous


def filter_stream(source: TextIO, sink: TextIO) -> None:
    """Copy ``source`` to ``sink`` line by line without the known-harmless noise."""
    line_filter = LineFilter()
    for text in source:
        for line in line_filter.feed(text):
            sink.write(line)
        sink.flush()
    for line in line_filter.flush():
        sink.write(line)


def error_excerpt(lines: Iterable[str], max_lines: int = 6) -> List[str]:
    """The last lines of a job log that say why it failed.

    The job runner's own ``# ...`` lines and harmless noise are left out. The excerpt ends at the
    last error line (a Python exception, ``error:``, a kill), which in a traceback is the exception
    itself, and holds the ``max_lines - 1`` lines before it; with no error line it is the log's
    last ``max_lines`` lines.
    """
    kept = [ln.rstrip("\n") for ln in lines if ln.strip() and not ln.startswith("# ")
            and not is_harmless(ln)]
    hits = [i for i, ln in enumerate(kept) if ERROR_LINE.search(ln)]
    end = hits[-1] + 1 if hits else len(kept)
    return kept[max(0, end - max_lines):end]
