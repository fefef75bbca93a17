"""The audit package's error: one type with a machine-readable ``code`` and a sentence."""

from __future__ import annotations


class AuditError(Exception):
    """The audit log or its storage could not do what was asked (unreadable or foreign export...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"
