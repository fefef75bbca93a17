"""Access tokens already verified, remembered until they expire.

A job sends the same access token with every read (only the proof of possession is new each
time), and verifying the token's Ed25519 signature and claims again costs as much as the rest
of the read's checks together. What depends only on the token's bytes - signature, type,
issuer, audience, claims - is remembered by the exact token text; what depends on time (not
issued in the future, not expired, with the caller's grace) is checked again at every read by
:meth:`VerifiedTokens.verify`. Revocation and refresh are not cached here: the token's status
is read from the database at every read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

from connector.dataplane.errors import InvalidToken
from connector.dataplane.tokens import CLOCK_SKEW_SECONDS, REFRESH_GRACE_SECONDS, AccessClaims


class VerifiedTokens:
    """Claims of verified tokens by token text; bounded, and dropped once past any use."""

    # Tokens remembered at once: one per running job is plenty; the least recently used go first.
    MAX_TOKENS = 4096

    def __init__(self, verify: Callable[[str, datetime, int], AccessClaims]) -> None:
        self._verify = verify
        self._claims: OrderedDict[str, AccessClaims] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str, moment: datetime, grace: int = 0) -> AccessClaims:
        """The token's claims, verified in full the first time and checked against the clock
        every time (the same rules and errors as ``tokens.verify_access_token``)."""
        now = int(moment.timestamp())
        with self._lock:
            claims = self._claims.get(token)
            if claims is not None:
                self._claims.move_to_end(token)
        if claims is None:
            claims = self._verify(token, moment, grace)
            self._remember(token, claims, now)
            return claims
        if claims.issued_at > now + CLOCK_SKEW_SECONDS:
            raise InvalidToken("bad_token", "the token is issued in the future")
        if now >= claims.expires_at + CLOCK_SKEW_SECONDS + grace:
            raise InvalidToken("token_expired", "the access token has expired; refresh it")
        return claims

    def _remember(self, token: str, claims: AccessClaims, now: int) -> None:
        with self._lock:
            self._claims[token] = claims
            while len(self._claims) > self.MAX_TOKENS:
                self._claims.popitem(last=False)
            # tokens past the longest grace any caller gives can no longer be used at all
            for old, seen in list(self._claims.items())[:16]:
                if now >= seen.expires_at + CLOCK_SKEW_SECONDS + REFRESH_GRACE_SECONDS:
                    del self._claims[old]

    def __len__(self) -> int:
        with self._lock:
            return len(self._claims)
