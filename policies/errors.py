"""The one error type of the policies package.

A ``PolicyError`` carries a machine-readable ``code`` (kebab-case, stable), a sentence a
person can act on, and ``location``: a JSON-path-like pointer into the policy document
(``$.permission[0].constraint[1].operator``) so an editor can underline the culprit.
"""

from __future__ import annotations


class PolicyError(Exception):
    """An ODRL document we refuse, or a request/world we cannot evaluate."""

    def __init__(self, code: str, message: str, location: str | None = None) -> None:
        self.code = code
        self.message = message
        self.location = location
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = f" (at {self.location})" if self.location else ""
        return f"{self.message}{where}"

    def to_json(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message}
        if self.location:
            body["location"] = self.location
        return body
