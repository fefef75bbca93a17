"""A dependency-free progress line for long CLI work (bulk publish, validation, harvesting).

Writes to stderr only when it is a terminal, or when forced, so piped output stays clean; a
final summary line is always written.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, label: str, stream: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self._stream = stream or sys.stderr
        self._interactive = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self._interactive and (now - self._last_draw > 0.1 or self.done == self.total):
            self._last_draw = now
            self._stream.write("\r" + self._line(now))
            self._stream.flush()

    def _line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            width = 30
            filled = int(width * self.done / self.total)
            bar = "#" * filled + "." * (width - filled)
            return f"{self.label} [{bar}] {self.done}/{self.total} ({rate:,.0f}/s)"
        return f"{self.label} {self.done} ({rate:,.0f}/s)"

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._interactive:
            self._stream.write("\r")
        self._stream.write(self._line(time.monotonic()) + "\n")
        self._stream.flush()
