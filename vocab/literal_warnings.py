"""rdflib's warning about an ill-typed literal, as one structured log line without a traceback.

rdflib logs every literal whose lexical form is not valid for its datatype (``"2024-13-45"^^
xsd:date``) at WARNING *with the converter's traceback*: a hostile record of ten thousand bad
dates wrote ten thousand tracebacks into the node's log. The literal itself is fine to keep - it
stays a literal with no Python value, and validation judges it ill-typed and says so in the
record's verdict. So the log line is rewritten here, on rdflib's logger: a short message, the
datatype and the converter's reason (cut, printable) as fields, no traceback, and at most
:data:`MAX_WARNINGS` such lines per :data:`WINDOW_SECONDS` (the next line after a quiet spell
says how many were left out).

Installed on import of :mod:`vocab` (every package that reads RDF imports it first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

RDFLIB_TERM_LOGGER: Final = "rdflib.term"
MESSAGE: Final = "ill-typed literal: kept without a value"
MAX_WARNINGS: Final = 20
"""Lines per window: enough to see what came in, few enough that a flood stays a few lines."""
WINDOW_SECONDS: Final = 10.0
MAX_REASON_CHARS: Final = 200
_PREFIX: Final = "Failed to convert Literal lexical form to value."


def _printable(text: str) -> str:
    shown = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)
    return shown if len(shown) <= MAX_REASON_CHARS else shown[: MAX_REASON_CHARS - 3] + "..."


class IllTypedLiteralWarnings(logging.Filter):
    """Rewrites rdflib's ill-typed-literal warnings (see the module docstring); passes the rest."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = float("-inf")
        self._shown = 0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.msg if isinstance(record.msg, str) else ""
        if not text.startswith(_PREFIX):
            return True
        with self._lock:
            now = self._clock()
            if now - self._window_start >= WINDOW_SECONDS:
                self._window_start, self._shown = now, 0
            if self._shown >= MAX_WARNINGS:
                self._suppressed += 1
                return False
            self._shown += 1
            suppressed, self._suppressed = self._suppressed, 0
        error = record.exc_info[1] if record.exc_info else None
        datatype = text.split("Datatype=", 1)[-1].split(", Converter=", 1)[0] if "Datatype=" in text else ""
        record.msg = MESSAGE
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        record.datatype = _printable(datatype)
        record.reason = _printable(f"{type(error).__name__}: {error}") if error is not None else ""
        if suppressed:
            record.suppressed = suppressed
        return True


    def new_window(self) -> None:
        """Start a new window now (a test that counts lines does not inherit another's)."""
        with self._lock:
            self._window_start, self._shown, self._suppressed = float("-inf"), 0, 0


INSTALLED: Final = IllTypedLiteralWarnings()


def install() -> None:
    """Put the filter on rdflib's term logger (once)."""
    logger = logging.getLogger(RDFLIB_TERM_LOGGER)
    if INSTALLED not in logger.filters:
        logger.addFilter(INSTALLED)


install()
