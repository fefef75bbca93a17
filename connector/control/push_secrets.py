"""A push destination's credential at rest: sealed with AES-256-GCM, readable only by this connector.

A consumer hands the provider the credential its storage takes (a bearer token, a signed-URL
secret). The provider needs it in clear only for the moment it writes, so the database holds it
sealed: AES-GCM with a key derived (HKDF-SHA256) from the connector's own participant key, a
fresh 96-bit nonce per seal, and the transfer id and field name as associated data, so a sealed
value copied to another transfer's row does not open. A database dump, a backup or a replica's
log therefore carries no usable credential; whoever holds the participant key can act as the
connector anyway.

Rotation: an envelope names the key it was sealed under (``kid``, the first bytes of the derived
key's SHA-256). A credential is needed only while its push is pending and is erased from the
transfer once the push ends, so rotating the participant key affects only the pushes pending at
that moment: each ends (terminated over DSP) with the reason that its credential was sealed
under a key this connector no longer has, instead of writing without it, and the consumer asks
again. Rotate when no push is pending to avoid even that.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connector.identity import KeyPair

#: Envelope version; a new algorithm would be a new version beside this one.
SEALED_VERSION = 1
#: HKDF ``info``: this key serves push credentials and nothing else.
_INFO = b"sluis push destination credential v1"
_NONCE_BYTES = 12
#: Longest sealed value opened (a credential is at most a few KiB; see push.MAX_CREDENTIAL_CHARS).
MAX_SEALED_CHARS = 16 * 1024


class SealError(ValueError):
    """A sealed value that does not open: unknown key, tampered, or not an envelope."""


def _derive(key: KeyPair) -> bytes:
    raw = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(raw)


def _kid(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:16]


class CredentialSealer:
    """Seals and opens destination credentials under keys derived from participant keys."""

    def __init__(self, key: KeyPair) -> None:
        self._current = _derive(key)
        self._kid = _kid(self._current)

    def seal(self, value: str, context: str) -> dict[str, Any]:
        """``value`` sealed; ``context`` (transfer id and field) must be given again to open it."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(self._current).encrypt(nonce, value.encode("utf-8"), context.encode("utf-8"))
        return {
            "v": SEALED_VERSION,
            "kid": self._kid,
            "nonce": base64.b64encode(nonce).decode(),
            "sealed": base64.b64encode(sealed).decode(),
        }

    def open(self, envelope: object, context: str) -> str:
        """The clear value of an envelope :meth:`seal` made for ``context``; :class:`SealError` otherwise."""
        if not isinstance(envelope, Mapping) or envelope.get("v") != SEALED_VERSION:
            raise SealError("not a sealed credential")
        if envelope.get("kid") != self._kid:
            raise SealError("the credential was sealed under a participant key this connector no longer has")
        text = envelope.get("sealed")
        if not isinstance(text, str) or len(text) > MAX_SEALED_CHARS:
            raise SealError("not a sealed credential")
        try:
            nonce = base64.b64decode(str(envelope.get("nonce")), validate=True)
            data = base64.b64decode(text, validate=True)
            return AESGCM(self._current).decrypt(nonce, data, context.encode("utf-8")).decode("utf-8")
        except (binascii.Error, InvalidTag, ValueError):
            reason = "the sealed credential does not open (altered, or made for another transfer)"
            raise SealError(reason) from None
