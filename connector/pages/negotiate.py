"""Does this request want a page? One small function, so a shared negotiation layer can replace it.

Browsers ask for ``text/html`` first; API clients ask for JSON, RDF or nothing at all. The same
URL answers both: HTML when the ``Accept`` header ranks ``text/html`` (or
``application/xhtml+xml``) strictly above every machine format it lists, the machine form
otherwise. A missing header or ``*/*`` alone means a client, not a person.
"""

from __future__ import annotations

from typing import Final

_HTML: Final = frozenset({"text/html", "application/xhtml+xml"})
# Longest Accept header read; past it the rest is ignored (a browser's is ~150 characters).
MAX_ACCEPT_CHARS: Final = 2048


def prefers_html(accept: str | None) -> bool:
    """True when the client ranks HTML above JSON, RDF and every other explicit type it names."""
    if not accept:
        return False
    best_html = 0.0
    best_other = 0.0
    for position, part in enumerate(accept[:MAX_ACCEPT_CHARS].split(",")):
        pieces = [piece.strip() for piece in part.split(";")]
        media = pieces[0].lower()
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
        # Earlier entries win ties, as browsers list their preference first.
        score = quality - position * 1e-6
        if media in _HTML:
            best_html = max(best_html, score)
        elif media not in ("*/*", "text/*"):
            best_other = max(best_other, score)
    return best_html > 0 and best_html > best_other
