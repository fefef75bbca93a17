"""Publisher API tokens: the credential a data provider presents to write records.

A token is bound to one publisher IRI (the ``dct:publisher`` its records must name). Only a
SHA-256 hash of each token is stored: tokens are 256-bit random strings, so a fast hash is
enough (there is nothing to brute-force), and a leaked database leaks no usable token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

TOKEN_PREFIX = "sluis_pub_"  # noqa: S105 (a prefix that makes leaked tokens recognisable)
TOKEN_BYTES = 32
TOKENS_FILE = "tokens.sqlite"
# Bearer tokens we issue are ~55 characters; longer input is not ours and is not hashed.
MAX_TOKEN_CHARS = 256
MAX_PUBLISHER_IRI_CHARS = 2048

_SCHEMA = """
CREATE TABLE IF NOT EXISTS publisher_token (
    token_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    publisher TEXT NOT NULL,
    created TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    strict INTEGER
);
"""


class TokenError(ValueError):
    """An invalid publisher IRI or token request."""


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    publisher: str
    token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_publisher_iri(publisher: str) -> str:
    parts = urlsplit(publisher)
    if len(publisher) > MAX_PUBLISHER_IRI_CHARS or not parts.scheme or not (parts.netloc or parts.path):
        raise TokenError(f"publisher must be an absolute IRI, got {publisher!r}")
    if any(char in publisher for char in ' <>"{}|\\^`'):
        raise TokenError(f"publisher IRI {publisher!r} holds characters IRIs may not contain")
    return publisher


class TokenStore:
    """Issued tokens in a small SQLite file next to the node's store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA busy_timeout=10000")
        self._connection.executescript(_SCHEMA)
        columns = {row[1] for row in self._connection.execute("PRAGMA table_info(publisher_token)")}
        if "strict" not in columns:  # a token file written before publishing modes per token
            self._connection.execute("ALTER TABLE publisher_token ADD COLUMN strict INTEGER")
        self._lock = threading.Lock()

    def create(
        self, publisher: str, now: datetime | None = None, *, strict: bool | None = None
    ) -> IssuedToken:
        """A new token for ``publisher``; ``strict`` overrides the node's publishing mode for it.

        True: records with SHACL violations are refused (422); False: they are stored with their
        conformance as part of their quality; None: the node's ``strict_publishing`` decides.
        """
        check_publisher_iri(publisher)
        token_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(TOKEN_BYTES)}"
        moment = (now or datetime.now(UTC)).isoformat()
        with self._lock:
            self._connection.execute(
                "INSERT INTO publisher_token(token_id, token_hash, publisher, created, strict) "
                "VALUES (?, ?, ?, ?, ?)",
                (token_id, _hash(token), publisher, moment, None if strict is None else int(strict)),
            )
        return IssuedToken(token_id, publisher, token)

    def publisher_for(self, token: str) -> str | None:
        """The publisher IRI a valid, unrevoked token belongs to; None for anything else."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        digest = _hash(token)
        with self._lock:
            row = self._connection.execute(
                "SELECT token_hash, publisher FROM publisher_token WHERE token_hash = ? AND revoked = 0",
                (digest,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        publisher: str = row[1]
        return publisher

    def strict_for(self, token: str) -> bool | None:
        """The publishing mode a valid token sets (None: the node's default, or no such token)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            return None
        with self._lock:
            row = self._connection.execute(
                "SELECT strict FROM publisher_token WHERE token_hash = ? AND revoked = 0", (_hash(token),)
            ).fetchone()
        return None if row is None or row[0] is None else bool(row[0])

    def revoke(self, token_id: str) -> bool:
        with self._lock:
            cursor = self._connection.execute(
                "UPDATE publisher_token SET revoked = 1 WHERE token_id = ? AND revoked = 0", (token_id,)
            )
        return cursor.rowcount > 0

    def close(self) -> None:
        self._connection.close()
