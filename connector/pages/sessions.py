"""Login sessions for the pages: a token exchanged once for a cookie, and a CSRF token per session.

The operator token of a connector (or a publisher token of a catalogue) is typed into the login
form once; the server keeps the session in memory and gives the browser only a random session
id, in a cookie the page's scripts cannot read (``HttpOnly``) and that other sites' requests do
not carry (``SameSite=Strict``). Every form that changes something carries the session's CSRF
token, compared in constant time. The login form itself is protected by a double-submit token
(a cookie and a hidden field that must match), so another site cannot log a browser in.

Each server names its cookies for itself (:func:`cookie_names`): browsers keep cookies per host,
not per port, so a catalogue and a connector (or two connectors) on one host would otherwise
share one cookie - logging into one logged out of the other and sent one server's session id to
the other.

Sessions live in this process only: a restart logs everyone out, and replicas behind a load
balancer need sticky sessions. The store is bounded: past :data:`MAX_SESSIONS` the session
closest to expiry is dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

# A working day; a session is not renewed by use, so a stolen cookie expires anyway.
SESSION_SECONDS: Final = 8 * 3600
# Sessions held at once; more people than this logging in means the oldest are logged out.
MAX_SESSIONS: Final = 10_000
# Tokens people paste are a few dozen characters; refuse anything that cannot be one.
MAX_TOKEN_CHARS: Final = 512
_ID_BYTES: Final = 32
_KIND: Final = re.compile(r"[a-z][a-z0-9]{0,15}")


@dataclass(frozen=True)
class CookieNames:
    """The names of one server's session cookie and login-form cookie."""

    session: str
    login: str


def cookie_names(kind: str, public_url: str) -> CookieNames:
    """Cookie names of the server of ``kind`` (``connector``, ``catalogue``) at ``public_url``.

    The kind keeps a catalogue's and a connector's apart on sight; a digest of the public URL
    keeps two servers of one kind on one host (a provider's and a consumer's connector on two
    ports) apart as well.
    """
    if not _KIND.fullmatch(kind):
        raise ValueError(f"cookie kind {kind!r}: lower-case letters and digits, at most 16")
    tag = hashlib.sha256(public_url.rstrip("/").encode("utf-8")).hexdigest()[:10]
    return CookieNames(f"sluis_{kind}_{tag}_session", f"sluis_{kind}_{tag}_login")


@dataclass(frozen=True)
class Session:
    """Who is logged in (``principal``: ``operator`` or a publisher IRI) and the session's CSRF token."""

    id: str
    principal: str
    csrf: str
    expires_at: float = field(compare=False)
    token: str = field(default="", compare=False, repr=False)
    """The token the session was opened with: checked again on every use, so revoking (or
    rotating) it ends the sessions it opened instead of leaving them working for hours."""


class SessionStore:
    """Sessions by id, in memory, with expiry and a size bound."""

    def __init__(self, *, clock: Callable[[], float] = time.time, lifetime: float = SESSION_SECONDS) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._lifetime = lifetime

    def open(self, principal: str, token: str = "") -> Session:
        now = self._clock()
        session = Session(
            secrets.token_urlsafe(_ID_BYTES),
            principal,
            secrets.token_urlsafe(_ID_BYTES),
            now + self._lifetime,
            token,
        )
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda item: item.expires_at)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id or len(session_id) > MAX_TOKEN_CHARS:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires_at <= self._clock():
                del self._sessions[session_id]
                return None
            return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for key in [key for key, item in self._sessions.items() if item.expires_at <= now]:
            del self._sessions[key]


def same_token(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted token with the expected one."""
    if not given or not expected or len(given) > MAX_TOKEN_CHARS:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_login_token() -> str:
    return secrets.token_urlsafe(_ID_BYTES)


# Failed logins allowed from one client address per window before it must wait. Tokens are long
# random strings, so guessing is hopeless anyway; this keeps a scripted guesser from burning CPU.
MAX_FAILED_LOGINS: Final = 10
FAILED_LOGIN_WINDOW_SECONDS: Final = 300.0
# Client addresses remembered at once; past this the oldest record is forgotten.
MAX_TRACKED_CLIENTS: Final = 10_000


class LoginThrottle:
    """Failed logins per client address in a sliding window, in memory, bounded."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _recent(self, client: str, now: float) -> list[float]:
        kept = [
            moment for moment in self._failures.get(client, []) if now - moment < FAILED_LOGIN_WINDOW_SECONDS
        ]
        if kept:
            self._failures[client] = kept
        else:
            self._failures.pop(client, None)
        return kept

    def wait_seconds(self, client: str) -> int:
        """0 when ``client`` may try to log in now, else how long it must wait."""
        now = self._clock()
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < MAX_FAILED_LOGINS:
                return 0
            return max(1, int(FAILED_LOGIN_WINDOW_SECONDS - (now - recent[-MAX_FAILED_LOGINS])) + 1)

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(client, []).append(now)
            self._failures[client] = self._failures[client][-MAX_FAILED_LOGINS:]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
