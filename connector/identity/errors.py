"""The identity package's errors: one type callers catch, with a machine-readable ``code``.

The code is what DSP error messages, problem bodies and logs carry; the message is the sentence
a person reads. ``ProofError`` is the subset raised when a Data Integrity proof or a credential
does not verify, so callers that only care about signatures can catch it alone.
"""

from __future__ import annotations


class IdentityError(Exception):
    """A failure to establish who someone is: bad key, unresolvable DID, rejected token."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"


class ProofError(IdentityError):
    """A signed document (Data Integrity proof, credential, agreement) failed verification."""
