"""``Authorization: Bearer <token>`` (RFC 6750), read the same way by every API.

Only the ``Bearer`` scheme (any case), one space-free token of RFC 6750 ``b64token`` characters,
at most :data:`MAX_BEARER_CHARS`. Anything else is "no token": the caller answers 401 without
ever comparing, hashing or parsing what was sent.
"""

from __future__ import annotations

import re

#: Longest bearer token read. Self-issued DSP tokens carrying a few credentials stay far below.
MAX_BEARER_CHARS = 64 * 1024
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization`` header value, or ``None`` when it holds no valid one."""
    if not header or len(header) > MAX_BEARER_CHARS + 7:
        return None
    scheme, _, rest = header.strip().partition(" ")
    token = rest.strip()
    if scheme.lower() != "bearer" or not token or not _B64TOKEN.match(token):
        return None
    return token
