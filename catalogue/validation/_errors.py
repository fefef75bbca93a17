"""Errors of the validation package: a machine-readable ``code`` next to a sentence."""

from __future__ import annotations


class ValidationEngineError(Exception):
    """Base class of every error the validation package raises on purpose."""

    code: str = "validation-error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class UnsupportedShapesError(ValidationEngineError):
    """The shapes graph uses something the fast validator does not implement.

    Raised only while compiling; :class:`catalogue.validation.FastValidator` catches it and
    validates with pyshacl instead, so an unimplemented constraint is never silently skipped.
    """

    code = "unsupported-shapes"
