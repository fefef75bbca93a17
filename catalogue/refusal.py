"""The error a record that cannot be published raises, wherever in the catalogue it is found.

Kept apart from :mod:`catalogue.publish` (which re-exports it) so that the low modules that
find such a record (the canonical labelling of blank nodes, used by signing and the compact
form) can raise it without importing the publisher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class PublishError(Exception):
    """A record that cannot be published; maps to an RFC 9457 problem.

    ``errors`` are (field, reason) pairs; ``extra`` carries structured detail (line/column,
    violations).
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        errors: Sequence[tuple[str, str]] = (),
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.extra = dict(extra or {})

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields when it crosses a process boundary (ingest workers).
        return (PublishError, (self.status, self.code, self.title, self.detail, self.errors, self.extra))
