"""The AI-job client's error: a ``code``, a sentence, and the server's problem body if any."""

from __future__ import annotations

from typing import Any


class JobError(Exception):
    """Something the job cannot do: no such dataset, negotiation refused, read denied..."""

    def __init__(self, code: str, message: str, status: int | None = None,
                 problem: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]"
