"""``Accept`` negotiation (RFC 9110 §12.5.1) shared by every API, browsers included.

``choose_media_type(accept, offered)`` returns the offered type the client prefers most: by
quality, then by how specific the matching range is (``text/html`` over ``text/*`` over
``*/*``), then by the client's order, then by the server's. ``q=0`` excludes a type even when
a wildcard would admit it. ``aliases`` maps types a client may ask for onto offered ones
(``application/json`` answered as JSON-LD). No header means the server's first choice.
``prefers_html(accept)`` tells a browser from a program: the pages answer a URL with HTML only
when the client ranks HTML above every machine format it names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

HTML = "text/html"
#: An Accept header longer than this is not a client's real preference list.
MAX_ACCEPT_CHARS = 4096
MAX_ACCEPT_RANGES = 64


@dataclass(frozen=True)
class MediaRange:
    media: str
    quality: float
    position: int

    @property
    def specificity(self) -> int:
        if self.media == "*/*":
            return 0
        return 1 if self.media.endswith("/*") else 2

    def matches(self, media_type: str) -> bool:
        if self.media == "*/*":
            return True
        if self.media.endswith("/*"):
            return media_type.split("/", 1)[0] == self.media[:-2]
        return media_type == self.media


def parse_accept(header: str | None) -> list[MediaRange]:
    """The media ranges of an ``Accept`` header; malformed parts are skipped, bad q reads as 0."""
    if not header:
        return []
    ranges: list[MediaRange] = []
    for position, part in enumerate(header[:MAX_ACCEPT_CHARS].split(",")[:MAX_ACCEPT_RANGES]):
        pieces = [piece.strip() for piece in part.split(";")]
        media = pieces[0].lower()
        if media.count("/") != 1 or not all(media.split("/")):
            continue
        quality = 1.0
        for parameter in pieces[1:]:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append(MediaRange(media, quality, position))
    return ranges


def choose_media_type(
    accept: str | None, offered: Sequence[str], aliases: Mapping[str, str] | None = None
) -> str | None:
    """The offered media type to answer with, or ``None`` when the client accepts none (406)."""
    if not offered:
        return None
    ranges = parse_accept(accept)
    if not ranges:
        return offered[0]
    named = {**{item: item for item in offered}, **(aliases or {})}
    best: tuple[float, int, int, int] | None = None
    choice: str | None = None
    for order, media_type in enumerate(offered):
        asked = [name for name, target in named.items() if target == media_type]
        matching = [r for r in ranges if any(r.matches(name) for name in asked)]
        if not matching:
            continue
        # the most specific range that matches decides this type's quality (RFC 9110)
        decisive = max(matching, key=lambda r: (r.specificity, -r.position))
        if decisive.quality <= 0:
            continue
        rank = (decisive.quality, decisive.specificity, -decisive.position, -order)
        if best is None or rank > best:
            best, choice = rank, media_type
    return choice


_HTML_TYPES = frozenset({HTML, "application/xhtml+xml"})


def prefers_html(accept: str | None) -> bool:
    """Whether a client (a browser) ranks HTML above every explicit machine format it names.

    A missing header or ``*/*`` alone is a program, not a person; on equal quality the earlier
    entry wins, as browsers list their preference first.
    """
    best_html: tuple[float, int] | None = None
    best_other: tuple[float, int] | None = None
    for media_range in parse_accept(accept):
        score = (media_range.quality, -media_range.position)
        if media_range.media in _HTML_TYPES:
            best_html = max(best_html or score, score)
        elif media_range.media not in ("*/*", "text/*"):
            best_other = max(best_other or score, score)
    if best_html is None or best_html[0] <= 0:
        return False
    return best_other is None or best_html > best_other
